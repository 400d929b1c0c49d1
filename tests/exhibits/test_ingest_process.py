"""``forumcast serve`` as a real process: its memory while large uploads stream in, and its
shutdown after an ingest worker was killed (as the OOM killer would)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import FIXTURES, SECRET, auth
from tests.exhibits import assets
from tests.test_cli import Server

OPS = auth("ops")
MB = 2**20


@pytest.fixture
def server() -> Iterator[Server]:
    server = Server(
        env={
            "FORUMCAST_SECRET": SECRET,
            "FORUMCAST_CATALOG": str(FIXTURES / "exhibits.yaml"),
            "FORUMCAST_INGEST_WORKERS": "1",
            "FORUMCAST_SLATE_SIZE": "320x180",
            # Only warnings: the test reads the server's output at the end, not while it runs.
            "FORUMCAST_LOG_LEVEL": "warning",
        }
    )
    yield server
    if server.proc.poll() is None:
        server.stop()


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


async def settled_rss(pid: int) -> int:
    """The server's RSS (kB) once its start (slates, the hall) is over: steady for a second."""
    last = status_kb(pid, "VmRSS")
    async with asyncio.timeout(60):
        while True:
            await asyncio.sleep(1.0)
            now = status_kb(pid, "VmRSS")
            if abs(now - last) < 1024:
                return now
            last = now


def workers_of(pid: int) -> list[int]:
    """The server's ingest worker processes (children running multiprocessing's spawn_main)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if parent == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


async def upload(session: aiohttp.ClientSession, base: str, exhibit: str, body: Any) -> str:
    async with session.post(
        f"{base}/api/v1/exhibits/{exhibit}/model", params={"filename": "m.stl"}, data=body, headers=OPS
    ) as response:
        assert response.status == 202, await response.text()
        url: str = (await response.json())["url"]
        return f"{base}{url}"


async def wait_job(session: aiohttp.ClientSession, url: str, until: tuple[str, ...]) -> dict[str, Any]:
    async with asyncio.timeout(120):
        while True:
            async with session.get(url, headers=OPS) as response:
                body: dict[str, Any] = await response.json()
            if body["state"] in until or body["step"] in until:
                return body
            await asyncio.sleep(0.05)


async def test_large_uploads_stream_to_disk_not_memory(server: Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    pid = server.proc.pid
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/readyz") as response:
            assert response.status == 200
        before = await settled_rss(pid)
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak RSS starts again from now

        async def forty_megabytes() -> AsyncIterator[bytes]:
            for _ in range(40):
                yield b"\0" * MB

        exhibits = ("cn-hydrogen-01", "de-solar-01", "dk-wind-01")
        urls = await asyncio.gather(*(upload(session, base, e, forty_megabytes()) for e in exhibits))
        ends = [await wait_job(session, url, ("done", "failed")) for url in urls]
    peak = status_kb(pid, "VmHWM")
    # 120 MB went through the server; its memory grew by far less than one upload.
    assert (peak - before) * 1024 < 40 * MB / 2, (before, peak)
    assert all(end["bytes"] == 40 * MB and end["error"]["code"] == "model.corrupt" for end in ends), ends
    assert list((Path(server.data) / "spool").iterdir()) == []


async def test_sigterm_after_a_killed_worker_exits_promptly(server: Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    slow = assets.slow_stl()
    async with aiohttp.ClientSession() as session:
        first = await upload(session, base, "cn-hydrogen-01", io.BytesIO(slow))
        await wait_job(session, first, ("normalise", "clean", "lod 0", "lod 1", "done", "failed"))
        [worker] = workers_of(server.proc.pid)
        os.kill(worker, signal.SIGKILL)
        lost = await wait_job(session, first, ("done", "failed"))
        assert lost["error"]["code"] == "ingest.worker_lost", lost
        async with session.get(f"{base}/readyz") as response:
            ready = await response.json()
        assert response.status == 200 and ready["checks"]["ingest"]["restarts"] == 1
        # A job running in the new pool when SIGTERM comes.
        second = await upload(session, base, "cn-hydrogen-01", io.BytesIO(slow))
        await wait_job(session, second, ("load", "normalise", "clean", "lod 0", "done", "failed"))
        children = workers_of(server.proc.pid)
    asked = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.to_thread(server.proc.communicate, timeout=60)
    took = time.monotonic() - asked
    assert server.proc.returncode == 0, err
    assert took < 15, f"shutdown took {took:.1f} s"
    assert "Traceback" not in err, err
    assert children and not any(Path(f"/proc/{child}").exists() for child in children)
    assert list((Path(server.data) / "spool").iterdir()) == []
