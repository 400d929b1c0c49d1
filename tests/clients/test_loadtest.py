"""``forumcast loadtest``: the run and the command, checked against the real server.

The end-to-end test publishes the live test pattern into the real app (a WebSocket
publisher in the same loop, with the benchmark's send-time tap) and runs the load test with
20 viewers for 3 s: every viewer must get the init segment and fragments, none may miss a
fragment, and the latency figures must be there and sane. The other tests check the
command's bounds: loopback only, limited viewers and duration.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients import loadtest
from clients.loadtest import LoadSettings, run_load
from clients.loadtest_frames import PREFIX, fragment_marks
from clients.publisher import publish
from clients.source import Item, pattern_items
from server.http.keys import STREAM_KEYS
from server.media.types import MediaFragment
from tests.clients.test_loadtest_frames import SETTINGS
from tests.conftest import Serve, main_cam_on_air


async def test_refuses_anything_but_loopback() -> None:
    with pytest.raises(loadtest.ClientError, match="loopback"):
        await run_load(LoadSettings("ws://192.0.2.1:8080/ws/watch/main", viewers=1, duration=1))
    with pytest.raises(ValueError, match="viewers"):
        LoadSettings("ws://127.0.0.1/ws/watch/main", viewers=loadtest.MAX_VIEWERS + 1)
    with pytest.raises(ValueError, match="duration"):
        LoadSettings("ws://127.0.0.1/ws/watch/main", viewers=1, duration=0)


def test_main_reports_usage_problems(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    loadtest.add_arguments(parser)
    args = parser.parse_args(["--server", "http://192.0.2.1:8080", "--stage", "main", "--viewers", "5"])
    assert loadtest.main(args) == 2
    assert "loopback" in capsys.readouterr().err


async def test_twenty_viewers_against_the_real_server(serve: Serve, tmp_path: Path) -> None:
    client = await serve(clock=main_cam_on_air())  # a session on main-cam: its program shows main-cam
    key = client.app[STREAM_KEYS].key("main-cam")
    sent_log = tmp_path / "sent.log"

    async def tapped() -> AsyncIterator[Item]:
        with sent_log.open("w", buffering=1) as log:
            async for item in pattern_items(SETTINGS):
                if isinstance(item, MediaFragment):
                    log.write(f"{fragment_marks(item.data[:PREFIX])[0]} {time.time():.6f}\n")
                yield item

    url = f"ws://127.0.0.1:{client.port}/ws/publish/main-cam"
    publishing = asyncio.create_task(publish(url, key, tapped(), duration=5.5))
    await asyncio.sleep(1.2)  # a whole GOP in the server's cache
    report = await run_load(
        LoadSettings(
            f"ws://127.0.0.1:{client.port}/ws/watch/main",
            viewers=20,
            ramp_per_second=200,
            duration=3,
            joins=5,
            sent_log=sent_log,
        )
    )
    await publishing

    assert report.connected == report.held == report.open_at_end == report.viewers_with_media == 20
    assert not report.failed and not report.disconnects and not report.errors
    assert report.inits == 25  # every viewer and every probe join got the init segment
    assert report.min_fragments >= 10  # 3 s of 200 ms fragments, and the cached GOP
    assert report.drops == 0 and report.unparsed == 0 and report.unmatched == 0
    assert report.ttff_ms.count == 20 and report.ttff_ms.p99 is not None and 0 < report.ttff_ms.p99 < 1000
    assert report.joins == 5 and report.join_ttff_ms.count == 5
    assert report.join_ttff_ms.p99 is not None and report.join_ttff_ms.p99 < 1000
    for stats in (report.latency_ms, report.added_latency_ms):
        assert stats is not None and stats.count >= 100
        assert stats.p50 is not None and stats.p99 is not None and stats.max is not None
        assert 0 <= stats.p50 <= stats.p99 <= stats.max < 1000
    assert report.added_latency_ms is not None and report.added_latency_ms.p99 is not None
    assert report.latency_ms.p50 is not None and report.latency_ms.p50 >= 200  # the fragment's duration
    assert report.added_latency_ms.p99 < report.latency_ms.p50
    assert report.bytes > 20 * 10 * 1000 and report.cpu_percent >= 0
    assert "held at the end        20" in report.describe()
