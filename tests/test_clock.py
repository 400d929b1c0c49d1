"""The service clock (server/clock.py): readings, stepping the wall clock versus letting time
pass, timers in deadline order, and a clock that runs at a multiple of real time."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from server.clock import ManualClock, SystemClock
from tests.conftest import at

START = at("2020-12-06T09:00:00+08:00")


def test_readings_agree() -> None:
    clock = ManualClock(START)
    assert clock.now() == START and clock.wall() == START.timestamp() and clock.monotonic() == 0.0
    clock.advance(timedelta(seconds=1.5))
    assert clock.now() == START + timedelta(seconds=1.5) and clock.monotonic() == 1.5
    with pytest.raises(ValueError, match="backwards"):
        clock.set(START)
    with pytest.raises(ValueError, match="aware"):
        ManualClock(START.replace(tzinfo=None))


async def test_stepping_the_wall_clock_is_not_time_passing() -> None:
    clock = ManualClock(START)
    woke: list[str] = []

    async def wall() -> None:
        await clock.sleep_until(START + timedelta(hours=1))
        woke.append("wall")

    async def monotonic() -> None:
        await clock.sleep(5.0)
        woke.append("monotonic")

    tasks = [asyncio.create_task(wall()), asyncio.create_task(monotonic())]
    await asyncio.sleep(0)
    clock.set(START + timedelta(hours=2))  # like an NTP step: the schedule moves, timers do not
    await asyncio.sleep(0)
    assert woke == ["wall"] and clock.monotonic() == 0.0
    clock.advance(5.0)
    await asyncio.gather(*tasks)
    assert woke == ["wall", "monotonic"] and clock.now() == START + timedelta(hours=2, seconds=5)


async def test_timers_run_in_deadline_order_and_cancelled_ones_never() -> None:
    clock = ManualClock(START)
    ran: list[str] = []
    clock.call_later(2.0, lambda: ran.append("b"))
    clock.call_later(1.0, lambda: ran.append("a"))
    clock.call_later(1.5, lambda: ran.append("never")).cancel()
    clock.call_later(3.0, lambda: ran.append("c"))
    clock.advance(2.5)
    assert ran == ["a", "b"]
    await clock.run(1.0, step=0.25)
    assert ran == ["a", "b", "c"] and clock.monotonic() == 3.5


async def test_a_running_clock_moves_at_its_rate() -> None:
    clock = ManualClock(START, rate=50.0)
    started = time.monotonic()
    await clock.sleep(10.0)  # 10 s of clock time at 50x: 0.2 s of real time
    real = time.monotonic() - started
    assert 0.19 <= real < 1.0
    assert 10.0 <= clock.monotonic() < 10.0 + 50 * 0.8
    fired = asyncio.Event()
    clock.call_later(5.0, fired.set)
    clock.advance(5.0)  # a jump still runs what it passes, at once
    assert fired.is_set()


async def test_the_system_clock_sleeps_and_schedules() -> None:
    clock = SystemClock()
    fired = asyncio.Event()
    clock.call_later(0.01, fired.set)
    before = clock.monotonic()
    await clock.sleep(0.02)
    assert clock.monotonic() - before >= 0.02 and fired.is_set()
    assert abs(clock.wall() - clock.now().timestamp()) < 0.01
