"""The Python clients against the real server: ``publish --test-pattern`` in, ``watch`` out."""

from __future__ import annotations

import asyncio
from pathlib import Path

from clients.publisher import publish
from clients.source import pattern_items
from clients.watch import watch
from server.encoding.testpattern import PatternSettings
from server.http.keys import STREAM_KEYS
from server.media.fmp4 import Fmp4Parser
from server.media.types import MediaFragment
from tests.conftest import Serve, ffmpeg, main_cam_on_air


async def test_test_pattern_published_and_watched_live(serve: Serve, tmp_path: Path) -> None:
    client = await serve(clock=main_cam_on_air())  # a session on main-cam: its program shows main-cam
    key = client.app[STREAM_KEYS].key("main-cam")
    settings = PatternSettings(
        label="main-cam", width=320, height=180, gop=25, fragment_ms=200, preset="ultrafast"
    )
    url = f"ws://127.0.0.1:{client.port}/ws/publish/main-cam"
    publishing = asyncio.create_task(publish(url, key, pattern_items(settings), duration=6))
    await asyncio.sleep(1.0)
    recording = tmp_path / "watched.mp4"
    report = await watch(f"ws://127.0.0.1:{client.port}/ws/watch/main", duration=3, record=recording)
    await publishing
    assert report.first_keyframe and report.drops == 0 and report.fragments >= 10
    assert report.ttff_ms is not None and report.ttff_ms < 1500  # the cached GOP arrives at once
    assert report.latency_p99_ms is not None and 0 <= report.latency_p99_ms < 1000
    assert report.mime is not None and "avc1." in report.mime and "mp4a.40.2" in report.mime
    items = Fmp4Parser().feed(recording.read_bytes())
    assert sum(isinstance(i, MediaFragment) for i in items) == report.fragments
    process = await asyncio.create_subprocess_exec(
        ffmpeg(), "-v", "error", "-i", str(recording), "-f", "null", "-", stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0 and stderr == b""
