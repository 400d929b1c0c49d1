"""The process's own probes: the peak window, the event-loop lag and the store's health,
seen through a real app's ``/metrics`` with real causes (a blocked loop, a killed Redis)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from server.clock import ManualClock
from server.probes import LAG_INTERVAL, PeakWindow, watch_loop_lag
from tests.conftest import Serve, at
from tests.support.metrics_text import value
from tests.support.redis_server import RedisServer


def test_peak_window_keeps_the_worst_sample_of_its_window() -> None:
    peaks = PeakWindow(window=10.0)
    assert peaks.peak(0.0) == 0.0
    peaks.add(0.0, 0.2)
    peaks.add(1.0, 0.05)
    peaks.add(2.0, 0.1)
    assert peaks.peak(5.0) == 0.2
    assert peaks.peak(10.5) == 0.1  # the 0.2 of t=0 left the window; 0.1 (t=2) is the worst now
    assert peaks.peak(12.5) == 0.0
    peaks.add(13.0, 0.3)
    peaks.add(13.5, 0.3)
    assert peaks.peak(23.2) == 0.3  # an equal later sample keeps the peak alive
    with pytest.raises(ValueError):
        PeakWindow(window=0)


async def test_loop_lag_measures_how_late_the_clock_wakes_it() -> None:
    """On a manual clock jumped past the timer, the lateness is exactly the overshoot."""
    clock = ManualClock(at("2020-12-06T09:00:00+08:00"))
    seen: list[float] = []
    task = asyncio.create_task(watch_loop_lag(clock, seen.append, interval=1.0, window=5.0))
    await asyncio.sleep(0)
    clock.advance(1.0)
    for _ in range(3):
        await asyncio.sleep(0)
    clock.advance(1.75)  # the next 1 s timer fires 0.75 s late
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [0.0, 0.75]


async def metrics(client: Any) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    text: str = await response.text()
    return text


async def test_a_blocked_event_loop_raises_the_lag_gauge(serve: Serve) -> None:
    client = await serve()
    await asyncio.sleep(0.6)
    calm = value(await metrics(client), "forumcast_event_loop_lag_seconds")
    assert calm is not None and calm < 0.15
    time.sleep(0.45)
    await asyncio.sleep(0.4)  # the probe's next wake-up comes late and reports it
    lag = value(await metrics(client), "forumcast_event_loop_lag_seconds")
    # the timer was due somewhere within the block: at least block - interval late
    assert lag is not None and 0.45 - LAG_INTERVAL <= lag < 1.0


async def test_redis_up_follows_the_store(serve: Serve, tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    await asyncio.to_thread(redis.start)
    try:
        client = await serve(redis_url=redis.url)
        assert value(await metrics(client), "forumcast_redis_up") == 1.0
        await asyncio.to_thread(redis.stop)
        assert await gauge_becomes(client, "forumcast_redis_up", 0.0, within=15.0)
        await asyncio.to_thread(redis.start)
        assert await gauge_becomes(client, "forumcast_redis_up", 1.0, within=10.0)
    finally:
        await asyncio.to_thread(redis.stop)


async def test_redis_up_is_1_without_redis(serve: Serve) -> None:
    client = await serve()
    assert value(await metrics(client), "forumcast_redis_up") == 1.0


async def gauge_becomes(client: Any, name: str, wanted: float, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if value(await metrics(client), name) == wanted:
            return True
        await asyncio.sleep(0.2)
    return False
