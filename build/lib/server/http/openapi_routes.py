"""The API described: ``GET /api/v1/openapi.json`` and the page ``GET /api/v1/docs``.

The description is the data file ``server/http/openapi.yaml`` (OpenAPI 3.1), read once per
process. The JSON answer adds ``servers``: the base URL the request came to, or
``public_url`` when one is configured (behind a proxy the request's own host may not be the
one clients use). The page is rendered here, on the server (:mod:`server.http.openapi_page`),
so it needs no script and no CDN.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import yaml
from aiohttp import web

from server.http.keys import CONFIG
from server.http.openapi_page import render_page

routes = web.RouteTableDef()


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document as the package ships it (parsed once; callers must not change it)."""
    text = resources.files("server.http").joinpath("openapi.yaml").read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def base_url(request: web.Request) -> str:
    """``public_url`` if configured, else the scheme and host the request came to."""
    configured = request.app[CONFIG].public_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


def served_document(request: web.Request) -> dict[str, Any]:
    """The document with ``servers`` naming where this request reached the API."""
    body = copy.copy(document())  # shallow: only the top-level key changes
    body["servers"] = [{"url": base_url(request)}]
    return body


@functools.cache
def _page() -> str:
    return render_page(document())


@routes.get("/api/v1/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(served_document(request), headers={"Cache-Control": "no-cache"})


@routes.get("/api/v1/docs")
async def api_docs(request: web.Request) -> web.Response:
    return web.Response(text=_page(), content_type="text/html", headers={"Cache-Control": "no-cache"})


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
