"""The exhibition service in a running app: demo models built once and cached, hall rebuilt."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from exhibits.keys import EXHIBITION
from exhibits.service import DEMO_MODELS_VERSION
from tests.conftest import Serve
from tests.exhibits.gltf_validator import errors, validate


async def ready_count(client: Any) -> int:
    body = await (await client.get("/api/v1/exhibits", params={"per_page": "200"})).json()
    return sum(1 for item in body["items"] if item["model"]["status"] == "ready")


async def test_demo_models_are_built_once_and_reused_after_a_restart(serve: Serve, tmp_path: Path) -> None:
    settings = {"catalog": "", "demo_models": True}
    first = await serve(**settings)
    total = len(first.app[EXHIBITION].catalog)
    assert total >= 120
    async with asyncio.timeout(120):
        while await ready_count(first) < total:
            await asyncio.sleep(0.25)
    one = await (await first.get("/api/v1/exhibits/cn-hydrogen-01")).json()
    assert one["demo"] is True and one["model"]["source_format"] == "procedural"
    assert first.app[EXHIBITION].asset("cn-hydrogen-01").source == f"demo:{DEMO_MODELS_VERSION}"  # type: ignore[union-attr]
    hall = await (await first.get("/hall.glb")).read()
    # Wait until the hall includes every model (it is rebuilt once the burst settles).
    async with asyncio.timeout(60):
        while True:
            body = await (await first.get("/api/v1/hall")).json()
            if (
                all(booth["lods"] for booth in body["booths"])
                and body["hall_glb_bytes"]
                and (
                    len(hall := await (await first.get("/hall.glb")).read()) == body["hall_glb_bytes"]
                    and len(hall) > 1_000_000
                )
            ):
                break
            await asyncio.sleep(0.25)
    assert errors(validate([hall])[0]) == []
    await first.close()
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*.glb")}
    second = await serve(**settings)
    # Ready at once from the cache: nothing rebuilt, nothing rewritten.
    assert await ready_count(second) == total
    assert second.app[EXHIBITION].demo_pending == 0
    assert await (await second.get("/hall.glb")).read() == hall
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*.glb")} == files
