"""The Python clients given two real instances: the first shuts down mid-publish, and the
publisher and the viewer carry on on the second (issue 13: equal instances behind a balancer)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from clients.connection import Backoff
from clients.publisher import Publisher
from clients.source import pattern_items
from clients.watcher import Watcher
from server.encoding.testpattern import PatternSettings
from server.http.keys import METRICS, STREAM_KEYS
from server.media.fmp4 import Fmp4Parser
from server.media.types import MediaFragment
from tests.conftest import Serve, main_cam_on_air


def received(instance: TestClient[Any, Any]) -> float:
    """Fragments the instance received from main-cam's publishers."""
    registry = instance.app[METRICS].registry
    return registry.get_sample_value("forumcast_relay_fragments_total", {"input": "main-cam"}) or 0.0


async def until(condition: Any, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_publisher_and_viewer_move_to_the_second_instance(serve: Serve, tmp_path: Path) -> None:
    first = await serve(clock=main_cam_on_air())  # main's program shows main-cam on both
    second = await serve(clock=main_cam_on_air())
    key = first.app[STREAM_KEYS].key("main-cam")
    assert second.app[STREAM_KEYS].key("main-cam") == key  # derived from the shared secret
    publish_urls = [f"ws://127.0.0.1:{c.port}/ws/publish/main-cam" for c in (first, second)]
    watch_urls = [f"ws://127.0.0.1:{c.port}/ws/watch/main" for c in (first, second)]
    settings = PatternSettings(
        label="main-cam", width=320, height=180, gop=25, fragment_ms=200, preset="ultrafast"
    )
    publisher = Publisher(publish_urls, key, pattern_items(settings), backoff=Backoff(initial=0.2))
    watcher = Watcher(watch_urls, backoff=Backoff(initial=0.2))
    statuses: list[str] = []
    publishing = asyncio.create_task(publisher.run(duration=9, on_status=statuses.append))
    await until(lambda: received(first) >= 5)
    recording = tmp_path / "watched.mp4"
    watching = asyncio.create_task(
        watcher.run(duration=7, record=recording, reconnect=True, on_status=statuses.append)
    )
    await asyncio.sleep(1.5)
    assert publisher.url == publish_urls[0] and watcher.url == watch_urls[0]
    assert received(second) == 0

    await first.close()  # the instance goes away: its WebSockets are closed with 1001
    before = received(first)
    await until(lambda: received(second) >= 5)
    assert publisher.url == publish_urls[1]
    assert watcher.url == watch_urls[1]

    report = await publishing
    watched = await watching
    assert received(first) == before  # nothing more reached the stopped instance
    assert received(second) >= 20  # about 5 s of 200 ms fragments after the switch
    assert report.connections == 2 and report.url == publish_urls[1]
    assert report.ended == "stopped"
    assert any(s.startswith("server going away") and publish_urls[1] in s for s in statuses)
    assert watched.connections == 2 and watched.url == watch_urls[1]
    assert watched.closed == "duration reached" and not watched.refused
    after_switch = Fmp4Parser().feed(recording.read_bytes()[watched.init_offsets[-1] :])
    assert sum(isinstance(item, MediaFragment) for item in after_switch) >= 10
