"""Two instances on one real Redis: uploads, jobs, model files and the hall scene are shared.

Each test runs two apps (two loopback servers, two data dirs, one ``redis-server``), so
what one instance did can only reach the other through Redis. Builds are counted by their
builders in Redis (``{p}builds``), not by mocks.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from exhibits.catalog import Catalog
from exhibits.demo_catalog import demo_catalog
from exhibits.keys import EXHIBITION
from exhibits.modelstore import ModelStore
from exhibits.service import Exhibition
from exhibits.settings import ExhibitionSettings
from exhibits.shared import SharedExhibition
from server.schedule.model import Event
from server.store.redis import connect
from tests.conftest import FIXTURES, Serve, server_config
from tests.exhibits import assets
from tests.exhibits.test_cli_ingest import CATALOG, ingest
from tests.exhibits.test_exhibit_routes import EXHIBITOR, finished, upload
from tests.support.redis_server import RedisServer


@pytest.fixture
async def redis_url(redis_server: RedisServer, event: Event) -> str:
    """The session's Redis with nothing of this event in it."""
    raw = redis.asyncio.Redis.from_url(redis_server.url)
    keys = [key async for key in raw.scan_iter(f"forumcast:{event.id}:*")]
    if keys:
        await raw.delete(*keys)
    await raw.aclose()
    return redis_server.url


async def two_instances(serve: Serve, tmp_path: Path, redis_url: str, **settings: Any) -> tuple[Any, Any]:
    a, b = [
        await serve(config=server_config(tmp_path / name, redis_url=redis_url, instance_id=name, **settings))
        for name in ("a", "b")
    ]
    return a, b


async def builds(client: Any) -> dict[str, int]:
    shared = client.app[EXHIBITION].shared
    assert shared is not None
    counted: dict[str, int] = await shared.builds()
    return counted


async def model_of(client: Any, exhibit: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            body = await (await client.get(f"/api/v1/exhibits/{exhibit}")).json()
            if body["model"]["status"] == "ready":
                model: dict[str, Any] = body["model"]
                return model
            await asyncio.sleep(0.1)


async def hall_after(client: Any, before: bytes | None = None) -> bytes:
    """``/hall.glb`` once it is another than ``before`` (any, if None)."""
    async with asyncio.timeout(30):
        while (glb := await (await client.get("/hall.glb")).read()) == before:
            await asyncio.sleep(0.1)
    return glb


async def test_the_hall_is_built_once_for_two_instances(
    serve: Serve, tmp_path: Path, redis_url: str, event: Event
) -> None:
    a, b = await two_instances(serve, tmp_path, redis_url)
    from_a, from_b = await (await a.get("/hall.glb")).read(), await (await b.get("/hall.glb")).read()
    assert from_a == from_b and len(from_a) > 1000
    assert (await a.get("/hall.glb")).headers["ETag"] == (await b.get("/hall.glb")).headers["ETag"]
    assert await builds(a) == {"hall": 1}
    # The builder let go of its lease; the other one fetched the scene rather than building it.
    raw = redis.asyncio.Redis.from_url(redis_url)
    assert [key async for key in raw.scan_iter(f"forumcast:{event.id}:build-lease:*")] == []
    await raw.aclose()
    fetched = [client.app[EXHIBITION].blobs.fetched for client in (a, b)]
    assert sorted(fetched) == [0, 1]


async def test_an_upload_to_one_instance_is_followed_and_served_by_the_other(
    serve: Serve, tmp_path: Path, redis_url: str
) -> None:
    a, b = await two_instances(serve, tmp_path, redis_url)
    empty = await hall_after(a)
    assert await hall_after(b) == empty
    response = await upload(a, "cn-hydrogen-01", assets.export(assets.tower(), "stl"), "tower.stl", unit="mm")
    assert response.status == 202
    url = (await response.json())["url"]
    job = await finished(b, url)  # B never ran it: it answers from Redis
    assert job["state"] == "done" and job["progress"] == 1.0, job
    assert job["model"]["lods"] == (await finished(a, url))["model"]["lods"]
    other = await b.get(url, headers={"Authorization": "Bearer nope"})
    assert other.status == 401
    model = await model_of(b, "cn-hydrogen-01")
    assert [lod["sha256"] for lod in model["lods"]] == [lod["sha256"] for lod in job["model"]["lods"]]
    for lod in model["lods"]:
        got_a, got_b = await a.get(lod["url"]), await b.get(lod["url"])
        assert got_a.status == got_b.status == 200
        assert await got_a.read() == await got_b.read()
        assert got_a.headers["ETag"] == got_b.headers["ETag"] == f'"{lod["sha256"]}"'
    # B fetched each file from Redis once, into its own data dir, and serves it from there.
    assert all(ModelStore(tmp_path / "b").has(lod["sha256"]) for lod in model["lods"])
    # One hall scene per change, wherever it was built: the empty hall, then the one with the model.
    assert await hall_after(a, empty) == await hall_after(b, empty)
    assert await builds(a) == {"hall": 2}
    unknown = await b.get("/api/v1/jobs/nope", headers=EXHIBITOR)
    assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "job.unknown"


async def test_a_model_file_over_the_shared_limit_is_refused(
    serve: Serve, tmp_path: Path, redis_url: str
) -> None:
    # The empty hall scene is about 40 KB; the upload's finest LOD about 140 KB.
    a, b = await two_instances(serve, tmp_path, redis_url, max_shared_blob_bytes=100_000)
    hall = await hall_after(a)
    big = assets.textured_glb(48, 96, texture_px=1024)
    response = await upload(a, "cn-hydrogen-01", big, "sphere.glb")
    job = await finished(b, (await response.json())["url"])
    assert job["state"] == "failed"
    assert job["error"]["code"] == "model.too_large"
    assert "LOD 0 of the model is" in job["error"]["message"], job["error"]
    assert "at most 100000 bytes" in job["error"]["message"], job["error"]
    # Nothing of it was stored or published: Redis holds the hall scene and no model.
    shared = a.app[EXHIBITION].shared
    raw = redis.asyncio.Redis.from_url(redis_url)
    blobs = [key async for key in raw.scan_iter(shared.blob_key("*"))]
    await raw.aclose()
    assert blobs == [shared.blob_key(await a.app[EXHIBITION].hall_sha()).encode()]
    assert await shared.models() == (0, {})
    assert ModelStore(tmp_path / "a").files() == [
        ModelStore(tmp_path / "a").path(await a.app[EXHIBITION].hall_sha())
    ]
    # Both instances go on serving, and a model within the limit still goes through.
    for client in (a, b):
        exhibit = await (await client.get("/api/v1/exhibits/cn-hydrogen-01")).json()
        assert exhibit["model"]["status"] == "none"
        assert await (await client.get("/hall.glb")).read() == hall
    small = await upload(a, "cn-hydrogen-01", assets.export(assets.tower(), "stl"), "tower.stl", unit="mm")
    assert (await finished(b, (await small.json())["url"]))["state"] == "done"


async def test_demo_models_are_built_once_when_two_instances_start_together(
    tmp_path: Path, redis_url: str, event: Event
) -> None:
    catalog = Catalog(demo_catalog()[:3])

    def instance(name: str) -> Exhibition:
        shared = SharedExhibition(connect(redis_url, decode_responses=False), event.id, owner=name)
        settings = ExhibitionSettings(workers=1, shared_rescan_seconds=0.1)
        return Exhibition(catalog, ModelStore(tmp_path / name), settings=settings, shared=shared)

    a, b = instance("a"), instance("b")
    try:
        await asyncio.gather(a.start(), b.start())
        a.build_demo_models()
        b.build_demo_models()
        async with asyncio.timeout(60):
            while not all(x.asset(e.id) for x in (a, b) for e in catalog):
                await b.rescan()
                await asyncio.sleep(0.1)
        assert a.shared is not None
        assert await a.shared.builds() == {"demo-model": 3}
        assert {e.id: a.asset(e.id) for e in catalog} == {e.id: b.asset(e.id) for e in catalog}
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_a_local_ingest_with_redis_configured_reaches_every_instance(
    serve: Serve, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await two_instances(serve, tmp_path, redis_url)
    source = tmp_path / "tower.stl"
    source.write_bytes(assets.export(assets.tower(), "stl"))
    monkeypatch.setenv("FORUMCAST_REDIS_URL", redis_url)
    monkeypatch.setenv("FORUMCAST_EVENT", str(FIXTURES / "event.yaml"))
    args = [
        "--exhibit",
        "dk-wind-01",
        "--unit",
        "mm",
        "--catalog",
        CATALOG,
        "--data-dir",
        str(tmp_path / "cli"),
    ]
    done = await asyncio.to_thread(ingest, str(source), *args)
    assert done.returncode == 0, done.stderr
    model_a, model_b = await model_of(a, "dk-wind-01"), await model_of(b, "dk-wind-01")
    assert model_a == model_b
    for lod in model_a["lods"]:
        assert await (await a.get(lod["url"])).read() == await (await b.get(lod["url"])).read()
