"""HTTP routes of the exhibition: catalog, model uploads and jobs, model files, the hall.

``GET /api/v1/exhibits``                 catalog query (country, category, q, page, per_page)
``GET /api/v1/exhibits/{id}``            one exhibit with its model's LODs
``POST /api/v1/exhibits/{id}/model``     upload (exhibitor:{id} or ops) → 202 + job URL
``GET /api/v1/jobs/{job}``               the job's state, progress, result or error
``GET /models/{sha256}.glb``             a stored GLB (immutable, ranges, optional gzip/br)
``GET /api/v1/hall``                     booths with transforms and LOD URLs
``GET /hall.glb``                        the whole hall scene

Contacts are never in a public answer. Handlers only translate between HTTP and
:class:`~exhibits.service.Exhibition`; the work happens there and in the worker pool.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import PurePath
from typing import Any

from aiohttp import BodyPartReader, web

from exhibits.catalog import Category, Exhibit
from exhibits.hall import hall_json
from exhibits.jobs import Busy
from exhibits.keys import EXHIBITION
from exhibits.modelstore import SHA256, ModelAsset
from exhibits.serving import preflight, serve_blob
from exhibits.spool import Spool, Spooled
from server import audit
from server.auth import Principal
from server.errors import AuthError, ForumcastError
from server.http.access import principal
from server.http.bodies import query_int
from server.http.keys import CONFIG
from server.http.middleware import error_response

routes = web.RouteTableDef()
#: Largest page number and page size a listing query may name.
MAX_PAGE_NUMBER = 10_000
_FILENAME = re.compile(r"^[^/\\\x00]{1,200}$")


def model_url(sha: str) -> str:
    return f"/models/{sha}.glb"


def asset_json(asset: ModelAsset | None, *, pending: bool = False) -> dict[str, Any]:
    if asset is None:
        return {"status": "processing" if pending else "none", "lods": []}
    return {
        "status": "ready",
        "source_format": asset.source_format,
        "source_triangles": asset.source_triangles,
        "unit": asset.unit,
        "up": asset.up,
        "bounds": [list(asset.bounds[0]), list(asset.bounds[1])],
        "created": asset.created,
        "warnings": list(asset.warnings),
        "lods": [
            {
                "level": lod.level,
                "url": model_url(lod.sha256),
                "sha256": lod.sha256,
                "triangles": lod.triangles,
                "vertices": lod.vertices,
                "bytes": lod.bytes,
                "texture_bytes": lod.texture_bytes,
                "texture_px": lod.texture_px,
                "error": lod.error,
            }
            for lod in asset.lods
        ],
    }


def exhibit_json(exhibit: Exhibit, *, brief: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": exhibit.id,
        "title": {"en": exhibit.title_en, "zh": exhibit.title_zh},
        "organisation": exhibit.organisation,
        "country": exhibit.country,
        "category": {"id": exhibit.category.value, "label": exhibit.category.label},
        "investment_stage": exhibit.investment_stage.value,
        "booth": exhibit.booth,
        "demo": exhibit.demo,
    }
    if not brief:
        body["summary"] = {"en": exhibit.summary_en, "zh": exhibit.summary_zh}
        body["tags"] = list(exhibit.tags)
        body["envelope"] = list(exhibit.envelope)
    return body


def _page_number(request: web.Request, name: str, default: int) -> int:
    # Bounded here so nothing huge reaches the slicing; the catalog checks per_page's own limit.
    return query_int(request, name, code="exhibit.bad_query", low=1, high=MAX_PAGE_NUMBER, default=default)


@routes.get("/api/v1/exhibits")
async def list_exhibits(request: web.Request) -> web.Response:
    exhibition = request.app[EXHIBITION]
    page = exhibition.catalog.query(
        country=request.query.get("country"),
        category=request.query.get("category"),
        q=request.query.get("q"),
        page=_page_number(request, "page", 1),
        per_page=_page_number(request, "per_page", 24),
    )
    items = []
    for exhibit in page.items:
        body = exhibit_json(exhibit, brief=True)
        asset = exhibition.asset(exhibit.id)
        body["summary"] = {"en": exhibit.summary_en, "zh": exhibit.summary_zh}
        body["model"] = {"status": "ready" if asset else "none", "lods": len(asset.lods) if asset else 0}
        items.append(body)
    return web.json_response(
        {
            "items": items,
            "total": page.total,
            "page": page.page,
            "per_page": page.per_page,
            "pages": page.pages,
        }
    )


@routes.get("/api/v1/exhibits/{exhibit}")
async def get_exhibit(request: web.Request) -> web.Response:
    exhibition = request.app[EXHIBITION]
    exhibit = exhibition.exhibit(request.match_info["exhibit"])
    body = exhibit_json(exhibit)
    body["model"] = asset_json(exhibition.asset(exhibit.id), pending=exhibition.jobs_pending(exhibit.id))
    return web.json_response(body)


def require_exhibitor(request: web.Request, exhibit: str) -> Principal:
    who = principal(request)
    if not (who.can_exhibit(exhibit) or who.is_ops):
        raise AuthError("auth.forbidden", f"this needs an exhibitor token for {exhibit!r} or an ops token")
    return who


async def _spool_upload(request: web.Request, spool: Spool, limit: int) -> tuple[Spooled, str]:
    """The uploaded file, spooled to disk as it arrives, and its name, from
    multipart/form-data or a raw body + ``?filename=``."""
    declared = request.content_length
    if declared is not None and declared > limit + 64 * 1024:
        raise ForumcastError("model.too_large", f"the upload is {declared} bytes; the limit is {limit}")
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and part.filename:
                name = _file_name(part.filename)
                return await spool.spool(part.read_chunk, limit=limit), name
        raise ForumcastError("model.empty", "the form has no file part")
    name = request.query.get("filename", "")
    if not name:
        raise ForumcastError("model.bad_option", "say the file's name: ?filename=model.obj (or send a form)")
    name = _file_name(name)  # refused before a byte is read
    return await spool.spool(request.content.read, limit=limit), name


def _file_name(name: str) -> str:
    name = PurePath(name.replace("\\", "/")).name
    if not _FILENAME.match(name):
        raise ForumcastError("model.bad_option", "the file name is empty or not usable")
    return name


@routes.post("/api/v1/exhibits/{exhibit}/model")
async def upload_model(request: web.Request) -> web.Response:
    exhibition = request.app[EXHIBITION]
    exhibit = exhibition.exhibit(request.match_info["exhibit"])
    who = require_exhibitor(request, exhibit.id)
    unit, up = request.query.get("unit"), request.query.get("up")
    exhibition.check_options(unit, up)
    try:
        exhibition.reserve(exhibit.id)  # before the body: a refused upload costs no bytes
    except Busy as exc:
        response = error_response(exc)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    try:
        upload, name = await _spool_upload(request, exhibition.spool, exhibition.limits.max_upload_bytes)
    finally:
        exhibition.release(exhibit.id)
    if not upload.size:
        await asyncio.to_thread(upload.remove)
        raise ForumcastError("model.empty", f"{name} is empty")
    job = exhibition.submit(exhibit, upload, name, unit=unit, up=up)  # the job owns the file now
    body = job.to_json(asset_json)
    await audit.record(
        request, who, "model.upload", f"exhibit:{exhibit.id}", file=name, bytes=upload.size, job=job.id
    )
    return web.json_response(body, status=202, headers={"Location": body["url"]})


@routes.get("/api/v1/jobs/{job}")
async def get_job(request: web.Request) -> web.Response:
    exhibition = request.app[EXHIBITION]
    job = await exhibition.job(request.match_info["job"])
    require_exhibitor(request, job.exhibit)
    return web.json_response(job.to_json(asset_json))


async def _stored_glb(request: web.Request, sha: str, *, immutable: bool) -> web.StreamResponse:
    exhibition = request.app[EXHIBITION]
    config = request.app[CONFIG]
    return await serve_blob(
        request,
        sha=sha,
        load=lambda: exhibition.models.read(sha),
        cache=exhibition.cache,
        immutable=immutable,
        compression=config.model_compression,
        cors=config.cors_origins,
    )


@routes.get("/models/{sha}.glb")
async def get_model(request: web.Request) -> web.StreamResponse:
    exhibition = request.app[EXHIBITION]
    sha = request.match_info["sha"]
    # A cached model is known to exist: only a miss costs a stat (and, with Redis, one
    # fetch into the data dir if no instance here had it yet).
    if not exhibition.cache.has(sha) and not (
        SHA256.match(sha) and (exhibition.models.has(sha) or await exhibition.blobs.ensure(sha))
    ):
        raise ForumcastError("model.unknown", f"no model {sha}")
    return await _stored_glb(request, sha, immutable=True)


@routes.get("/hall.glb")
async def get_hall_glb(request: web.Request) -> web.StreamResponse:
    exhibition = request.app[EXHIBITION]
    sha = await exhibition.hall_sha()
    if not exhibition.cache.has(sha):
        await exhibition.blobs.ensure(sha)  # built by another instance: fetched once
    # The hall changes when models do: revalidated (ETag) rather than cached for a year.
    return await _stored_glb(request, sha, immutable=False)


@routes.route("OPTIONS", "/models/{sha}.glb")
@routes.route("OPTIONS", "/hall.glb")
async def model_preflight(request: web.Request) -> web.Response:
    return await preflight(request, request.app[CONFIG].cors_origins)


@routes.get("/api/v1/hall")
async def get_hall(request: web.Request) -> web.Response:
    exhibition = request.app[EXHIBITION]
    body = hall_json(exhibition.layout)
    for booth in body["booths"]:
        exhibit = exhibition.exhibit(booth["exhibit"])
        asset = exhibition.asset(exhibit.id)
        booth["title_en"] = exhibit.title_en
        booth["title_zh"] = exhibit.title_zh
        booth["country"] = exhibit.country
        booth["lods"] = [
            {"level": lod.level, "url": model_url(lod.sha256), "triangles": lod.triangles, "bytes": lod.bytes}
            for lod in (asset.lods if asset else ())
        ]
    body["hall_glb"] = "/hall.glb"
    body["hall_glb_bytes"] = exhibition.hall_bytes()
    present = {e.category for e in exhibition.catalog}
    body["categories"] = [{"id": c.value, "label": c.label} for c in Category if c in present]
    body["countries"] = exhibition.catalog.countries()
    return web.json_response(body)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
