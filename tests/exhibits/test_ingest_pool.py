"""The ingest queue over real HTTP with real worker processes: a worker killed as the OOM
killer would, the per-exhibit and queue limits, fair turns, spooled files, warnings."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp

from exhibits.keys import EXHIBITION
from tests.conftest import Serve, auth
from tests.exhibits import assets

OPS = auth("ops")


async def post(client: Any, exhibit: str, data: bytes, name: str = "m.stl", **params: str) -> Any:
    query = {"filename": name, **params}
    return await client.post(
        f"/api/v1/exhibits/{exhibit}/model", params=query, data=io.BytesIO(data), headers=OPS
    )


async def accepted(client: Any, exhibit: str, data: bytes, name: str = "m.stl", **params: str) -> str:
    response = await post(client, exhibit, data, name, **params)
    assert response.status == 202, await response.text()
    url: str = (await response.json())["url"]
    return url


async def job(client: Any, url: str) -> dict[str, Any]:
    body: dict[str, Any] = await (await client.get(url, headers=OPS)).json()
    return body


async def finished(client: Any, url: str, *, timeout: float = 120) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while (body := await job(client, url))["state"] not in ("done", "failed"):
            await asyncio.sleep(0.1)
    return body


async def working(client: Any, url: str) -> None:
    """Until the job's worker is into the pipeline (it has reported a step of its own)."""
    async with asyncio.timeout(60):
        while (await job(client, url))["step"] in ("queued", "starting"):
            await asyncio.sleep(0.02)


async def restarts_metric(client: Any) -> float:
    text = await (await client.get("/metrics")).text()
    line = next(line for line in text.splitlines() if line.startswith("forumcast_ingest_pool_restarts_total"))
    return float(line.split()[1])


async def test_a_killed_worker_fails_its_job_and_the_pool_comes_back(serve: Serve, tmp_path: Path) -> None:
    client = await serve(ingest_workers=1)
    exhibition = client.app[EXHIBITION]
    await exhibition.hall_sha()
    ready = await (await client.get("/readyz")).json()
    assert ready["checks"]["ingest"] == {
        "ok": True,
        "workers": 1,
        "alive": 1,
        "restarts": 0,
        "running": 0,
        "queued": 0,
    }
    assert await restarts_metric(client) == 0
    url = await accepted(client, "cn-hydrogen-01", assets.slow_stl())
    await working(client, url)
    [pid] = exhibition.workers.pids()
    os.kill(pid, signal.SIGKILL)
    failed = await finished(client, url)
    assert failed["state"] == "failed" and failed["error"]["code"] == "ingest.worker_lost", failed
    assert "out of memory" in failed["error"]["message"] and "Traceback" not in str(failed)
    # Nothing of it was stored, its spooled upload is gone, and the next upload works.
    assert exhibition.asset("cn-hydrogen-01") is None and exhibition.spool.files() == []
    tower = assets.export(assets.tower(), "stl")
    good = await finished(client, await accepted(client, "cn-hydrogen-01", tower))
    assert good["state"] == "done", good
    assert exhibition.workers.pids() != [pid]
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 200 and body["checks"]["ingest"]["ok"] is True
    assert body["checks"]["ingest"]["restarts"] == 1 and body["checks"]["ingest"]["alive"] == 1
    assert await restarts_metric(client) == 1
    # The hall is rebuilt with the new model, in the new pool.
    hall = await client.get("/hall.glb")
    assert hall.status == 200


async def test_a_job_that_only_shared_the_broken_pool_runs_again(serve: Serve) -> None:
    client = await serve(ingest_workers=2)
    exhibition = client.app[EXHIBITION]
    await exhibition.hall_sha()
    exhibits = ("cn-hydrogen-01", "de-solar-01")
    urls = [await accepted(client, exhibit, assets.slow_stl()) for exhibit in exhibits]
    for url in urls:
        await working(client, url)
    os.kill(exhibition.workers.pids()[0], signal.SIGKILL)
    ends = [await finished(client, url, timeout=180) for url in urls]
    # Exactly the job on the killed worker failed; the other one ran again and was stored.
    assert sorted(e["state"] for e in ends) == ["done", "failed"], ends
    assert [e["error"]["code"] for e in ends if e["state"] == "failed"] == ["ingest.worker_lost"]
    assert exhibition.workers.restarts == 1


async def test_limits_answer_429_and_turns_are_fair(serve: Serve, tmp_path: Path) -> None:
    client = await serve(ingest_workers=1, max_queued_jobs=3)
    exhibition = client.app[EXHIBITION]
    await exhibition.hall_sha()
    small = assets.export(assets.tower(), "stl")
    first = await accepted(client, "cn-hydrogen-01", assets.slow_stl())
    await working(client, first)
    second = await accepted(client, "cn-hydrogen-01", assets.slow_stl())
    # A third job of the same exhibit: 429 before its body is read.
    busy = await post(client, "cn-hydrogen-01", small)
    assert busy.status == 429 and busy.headers["Retry-After"].isdigit()
    assert (await busy.json())["error"]["code"] == "model.busy"
    # Other exhibitors still get in, until the queue (3 waiting) is full.
    others = [await accepted(client, exhibit, small) for exhibit in ("de-solar-01", "dk-wind-01")]
    full = await post(client, "fr-storage-01", small)
    assert full.status == 429 and int(full.headers["Retry-After"]) > 0
    assert (await full.json())["error"]["code"] == "ingest.queue_full"
    ends = {url: await finished(client, url, timeout=180) for url in [first, second, *others]}
    assert all(end["state"] == "done" for end in ends.values()), ends
    # The small jobs of the other exhibitors ran before the first exhibitor's second job.
    order = sorted(ends, key=lambda url: ends[url]["started"])
    assert order == [first, *others, second]
    # Every spooled upload is gone, and the exhibitor that was refused can upload now.
    assert exhibition.spool.files() == []
    late = await finished(client, await accepted(client, "fr-storage-01", small))
    assert late["state"] == "done"
    health = (await (await client.get("/readyz")).json())["checks"]["ingest"]
    assert health["queued"] == 0 and health["running"] == 0 and health["restarts"] == 0


async def test_library_warnings_reach_the_job_and_the_model(serve: Serve) -> None:
    client = await serve()
    end = await finished(client, await accepted(client, "de-solar-01", assets.ply_missing_texture(), "t.ply"))
    assert end["state"] == "done", end
    assert "trimesh: unable to load image!" in end["warnings"]
    assert all("\n" not in line and "Traceback" not in line for line in end["warnings"])
    model = (await (await client.get("/api/v1/exhibits/de-solar-01")).json())["model"]
    assert model["warnings"] == end["warnings"]


async def test_a_multipart_upload_is_spooled_and_removed(serve: Serve) -> None:
    client = await serve(max_upload_bytes=100_000)
    exhibition = client.app[EXHIBITION]
    form_data = aiohttp.FormData()
    # Under the Content-Length check's slack, so the limit is met while spooling.
    form_data.add_field("file", b"\0" * 150_000, filename="big.stl")
    response = await client.post("/api/v1/exhibits/il-water-01/model", data=form_data, headers=OPS)
    assert response.status == 413 and (await response.json())["error"]["code"] == "model.too_large"
    assert exhibition.spool.files() == []
    # The refused upload no longer counts against the exhibit.
    end = await finished(client, await accepted(client, "il-water-01", assets.export(assets.tower(), "stl")))
    assert end["state"] == "done" and exhibition.spool.files() == []
