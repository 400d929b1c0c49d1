"""The exhibition over real HTTP: catalog, uploads through the worker pool, jobs, the hall."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from exhibits.glb_read import read_glb
from exhibits.keys import EXHIBITION
from tests.conftest import Serve, auth
from tests.exhibits import assets
from tests.exhibits.gltf_validator import errors, validate

EXHIBITOR = auth("exhibitor:cn-hydrogen-01")


async def upload(
    client: Any, exhibit: str, data: bytes, name: str, headers: dict[str, str] | None = None, **params: str
) -> aiohttp.ClientResponse:
    response: aiohttp.ClientResponse = await client.post(
        f"/api/v1/exhibits/{exhibit}/model",
        params={"filename": name, **params},
        data=data,
        headers=EXHIBITOR if headers is None else headers,
    )
    return response


async def finished(client: Any, url: str, *, timeout: float = 120) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            body: dict[str, Any] = await (await client.get(url, headers=EXHIBITOR)).json()
            if body["state"] in ("done", "failed"):
                return body
            await asyncio.sleep(0.1)


def store_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*") if p.is_file() and p.name != "hall.json")


async def test_catalog_endpoints(serve: Serve) -> None:
    client = await serve()
    body = await (await client.get("/api/v1/exhibits", params={"q": "储能", "per_page": "1"})).json()
    assert body["total"] == 2 and body["pages"] == 2 and [e["id"] for e in body["items"]] == ["fr-storage-01"]
    assert "contact" not in str(body)
    one = await (await client.get("/api/v1/exhibits/dk-wind-01")).json()
    assert one["title"] == {"en": "Small wind turbine for islands", "zh": "海岛小型风机"}
    assert one["category"] == {"id": "wind", "label": "Wind"} and one["model"] == {
        "status": "none",
        "lods": [],
    }
    assert "hello@wind" not in str(one)
    bad = await client.get("/api/v1/exhibits", params={"page": "two"})
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "exhibit.bad_query"
    missing = await client.get("/api/v1/exhibits/nope")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "exhibit.unknown"


async def test_upload_a_textured_obj_zip_end_to_end(serve: Serve, tmp_path: Path) -> None:
    client = await serve()
    response = await upload(client, "cn-hydrogen-01", assets.obj_zip(), "stack.zip")
    assert response.status == 202
    accepted = await response.json()
    assert response.headers["Location"] == accepted["url"] and accepted["state"] in ("queued", "running")
    job = await finished(client, accepted["url"])
    assert job["state"] == "done" and job["progress"] == 1.0, job
    exhibit = await (await client.get("/api/v1/exhibits/cn-hydrogen-01")).json()
    model = exhibit["model"]
    assert model["status"] == "ready" and model["source_format"] == "obj" and model["lods"]
    assert model["bounds"][0][1] == pytest.approx(0.0, abs=1e-5)
    glbs = []
    for lod in model["lods"]:
        got = await client.get(lod["url"])
        assert got.status == 200 and got.headers["Content-Type"] == "model/gltf-binary"
        data = await got.read()
        assert len(data) == lod["bytes"] and lod["triangles"] > 0
        glbs.append(data)
        part = read_glb(data).parts[0]
        texture = part.material.base_color_texture
        assert texture is not None and part.uvs is not None
        assert Image.open(io.BytesIO(texture.data)).size == (texture.width, texture.height)
    assert all(errors(report) == [] for report in validate(glbs))
    # The hall lists the booth's LODs and /hall.glb is rebuilt with the model in it.
    hall = await (await client.get("/api/v1/hall")).json()
    booth = next(b for b in hall["booths"] if b["exhibit"] == "cn-hydrogen-01")
    assert [lod["url"] for lod in booth["lods"]] == [lod["url"] for lod in model["lods"]]


async def test_multipart_form_upload(serve: Serve) -> None:
    client = await serve()
    form = aiohttp.FormData()
    form.add_field("file", assets.export(assets.tower(), "stl"), filename="tower.stl")
    response = await client.post(
        "/api/v1/exhibits/cn-hydrogen-01/model?unit=mm", data=form, headers=EXHIBITOR
    )
    assert response.status == 202
    job = await finished(client, (await response.json())["url"])
    assert job["state"] == "done", job
    low, high = job["model"]["bounds"]
    # A 200 x 300 x 1000 mm Z-up tower stands 1 m tall along +Y.
    assert high[1] - low[1] == pytest.approx(1.0, rel=1e-3)


async def test_uploads_need_the_exhibits_token(serve: Serve) -> None:
    client = await serve()
    data = assets.export(assets.tower(), "stl")
    assert (await upload(client, "cn-hydrogen-01", data, "t.stl", headers={})).status == 401
    other = await upload(client, "cn-hydrogen-01", data, "t.stl", headers=auth("exhibitor:de-solar-01"))
    assert other.status == 403
    ops = await upload(client, "cn-hydrogen-01", data, "t.stl", headers=auth("ops"))
    assert ops.status == 202
    job = await (await client.get((await ops.json())["url"], headers=auth("exhibitor:de-solar-01"))).json()
    assert job["error"]["code"] == "auth.forbidden"


BAD_UPLOADS = [
    ("empty.stl", b"", "model.empty", 422),
    ("cloud.ply", assets.point_cloud_ply(), "model.no_faces", 422),
    ("wire.obj", assets.WIREFRAME_OBJ, "model.no_faces", 422),
    ("thing.xyz", assets.UNKNOWN_BYTES, "model.unknown_format", 415),
    ("cut.glb", assets.truncated_glb(), "model.corrupt", 400),
    ("bad.stl", assets.corrupt_stl(), "model.corrupt", 400),
    ("evil.zip", assets.zip_with_names("../evil.obj"), "model.unsafe_archive", 422),
    ("abs.zip", assets.zip_with_names("/etc/evil.obj"), "model.unsafe_archive", 422),
    ("many.zip", assets.zip_with_entries(600), "model.too_many_entries", 413),
    ("bomb.zip", assets.zip_bomb(50), "model.archive_too_large", 413),
    ("escape.zip", assets.gltf_zip({"buffer": "../../outside.bin"}), "model.external_uri", 422),
    ("remote.zip", assets.gltf_zip({"buffer": "https://example.org/b.bin"}), "model.external_uri", 422),
    ("nan.obj", assets.NAN_OBJ, "model.non_finite", 422),
]


@pytest.mark.parametrize(("name", "data", "code", "status"), BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
async def test_bad_uploads_fail_their_job_and_store_nothing(
    serve: Serve, tmp_path: Path, name: str, data: bytes, code: str, status: int
) -> None:
    client = await serve()
    data_dir = tmp_path / "data"
    await client.app[EXHIBITION].hall_sha()  # the hall scene at start is written by now
    before = store_files(data_dir)
    response = await upload(client, "cn-hydrogen-01", data, name)
    if response.status == 202:
        job = await finished(client, (await response.json())["url"])
        assert job["state"] == "failed" and job["error"]["code"] == code, job
    else:
        assert response.status == status and (await response.json())["error"]["code"] == code
    assert store_files(data_dir) == before
    exhibit = await (await client.get("/api/v1/exhibits/cn-hydrogen-01")).json()
    assert exhibit["model"]["status"] == "none"
    # The service goes on: a good upload right after works.
    good = await upload(client, "cn-hydrogen-01", assets.export(assets.tower(), "stl"), "ok.stl")
    assert (await finished(client, (await good.json())["url"]))["state"] == "done"


async def test_size_and_triangle_limits(serve: Serve) -> None:
    client = await serve(max_upload_bytes=100_000, max_triangles=100)
    big = await upload(client, "cn-hydrogen-01", b"x" * 200_000, "big.stl")
    assert big.status == 413 and (await big.json())["error"]["code"] == "model.too_large"
    many = await upload(client, "cn-hydrogen-01", assets.export(assets.uv_sphere(12, 24), "stl"), "s.stl")
    job = await finished(client, (await many.json())["url"])
    assert job["error"]["code"] == "model.too_many_triangles"


async def test_bad_options_are_refused_before_reading(serve: Serve) -> None:
    client = await serve()
    response = await upload(client, "cn-hydrogen-01", b"solid x", "x.stl", unit="furlong")
    assert response.status == 400 and (await response.json())["error"]["code"] == "model.bad_option"
    nameless = await client.post("/api/v1/exhibits/cn-hydrogen-01/model", data=b"x", headers=EXHIBITOR)
    assert nameless.status == 400


async def test_hall_json_and_glb(serve: Serve) -> None:
    client = await serve()
    hall = await (await client.get("/api/v1/hall")).json()
    assert sorted(b["exhibit"] for b in hall["booths"]) == sorted(
        e.id for e in client.app[EXHIBITION].catalog
    )
    assert {c["id"] for c in hall["categories"]} == {
        "hydrogen",
        "solar",
        "wind",
        "energy-storage",
        "water-sponge-city",
    }
    assert hall["countries"] == ["CN", "DE", "DK", "FR", "IL"]
    response = await client.get("/hall.glb")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-cache"
    data = await response.read()
    assert errors(validate([data])[0]) == []
    again = await client.get("/hall.glb", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


async def test_a_chunked_upload_is_cut_off_at_the_limit(serve: Serve, tmp_path: Path) -> None:
    client = await serve(max_upload_bytes=100_000)
    await client.app[EXHIBITION].hall_sha()
    before = store_files(tmp_path / "data")

    async def body() -> Any:
        for _ in range(50):  # 3.2 MB offered without a Content-Length
            yield b"\0" * 65536

    response = await client.post(
        "/api/v1/exhibits/cn-hydrogen-01/model?filename=big.stl", data=body(), headers=EXHIBITOR
    )
    assert response.status == 413 and (await response.json())["error"]["code"] == "model.too_large"
    assert store_files(tmp_path / "data") == before
    assert client.app[EXHIBITION].jobs.active() == 0
