"""Stage states and the boundary timer (server/schedule/scheduler.py) on a manual clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from server.clock import ManualClock
from server.events import BusEvent, EventBus, Subscription
from server.metrics import Metrics
from server.schedule.model import Event
from server.schedule.scheduler import Scheduler, StageState, next_boundary, stage_status
from server.schedule.service import ScheduleService
from server.store.memory import MemoryStore
from tests.conftest import at

WINDOW = timedelta(minutes=15)


@pytest.mark.parametrize(
    ("moment", "state", "current", "following"),
    [
        ("2020-12-06T08:00:00+08:00", StageState.IDLE, None, "opening"),
        ("2020-12-06T08:45:00+08:00", StageState.UPCOMING, None, "opening"),
        ("2020-12-06T09:00:00+08:00", StageState.LIVE, "opening", "keynote"),
        ("2020-12-06T10:00:00+08:00", StageState.LIVE, "keynote", "afternoon"),  # back to back
        ("2020-12-06T12:00:00+08:00", StageState.BETWEEN, None, "afternoon"),
        ("2020-12-06T13:50:00+08:00", StageState.UPCOMING, None, "afternoon"),
        ("2020-12-06T20:00:00+08:00", StageState.IDLE, None, "day-two"),  # overnight
        ("2020-12-07T10:00:00+08:00", StageState.ENDED, None, None),
    ],
)
def test_stage_status(
    event: Event, moment: str, state: StageState, current: str | None, following: str | None
) -> None:
    status = stage_status(event.sessions_of("main"), at(moment), upcoming=WINDOW)
    assert status.state is state
    assert (status.current.id if status.current else None) == current
    assert (status.next.id if status.next else None) == following


def test_session_crossing_midnight_is_live_on_both_dates(event: Event) -> None:
    sessions = event.sessions_of("europe")
    assert stage_status(sessions, at("2020-12-07T23:59:00+08:00"), upcoming=WINDOW).state is StageState.LIVE
    assert stage_status(sessions, at("2020-12-08T00:29:00+08:00"), upcoming=WINDOW).state is StageState.LIVE
    assert stage_status(sessions, at("2020-12-08T00:30:00+08:00"), upcoming=WINDOW).state is StageState.ENDED


def test_no_sessions_is_idle_forever() -> None:
    assert stage_status([], at("2020-12-06T09:00:00+08:00"), upcoming=WINDOW).state is StageState.IDLE
    assert next_boundary([], at("2020-12-06T09:00:00+08:00"), upcoming=WINDOW) is None


async def next_event(sub: Subscription, kind: str) -> BusEvent:
    while True:
        event = await asyncio.wait_for(sub.get(), timeout=2)
        if event.type == kind:
            return event


async def test_timer_fires_at_each_boundary_without_polling(event: Event) -> None:
    clock = ManualClock(at("2020-12-06T08:00:00+08:00"))
    bus = EventBus()
    service = ScheduleService(event, MemoryStore("t"), bus)
    metrics = Metrics(s.id for s in event.stages)
    scheduler = Scheduler(service, clock, bus, upcoming=WINDOW, metrics=metrics)
    sub = bus.subscribe()
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.sleep(0.01)
        assert sub.get_nowait() is None  # nothing is announced at start-up

        clock.set(at("2020-12-06T09:00:00+08:00"))  # passes 08:45 (upcoming) and 09:00
        started = await next_event(sub, "session.started")
        assert (started.stage, started.data["session"]) in {("main", "opening")}
        assert metrics.stage_live.labels(stage="main")._value.get() == 1

        clock.set(at("2020-12-06T10:00:30+08:00"))  # 30 s late: the lag is measured
        ended = await next_event(sub, "session.ended")
        assert ended.data["session"] in {"opening", "forum-talk"}
        await asyncio.sleep(0.01)
        assert scheduler.lag_seconds >= 30
        while sub.get_nowait() is not None:  # what the 10:00 boundary announced
            pass

        # The rest of the program, boundary by boundary, in milliseconds: every session
        # starts and ends exactly once, in order.
        now = clock.now()
        boundaries = sorted(
            {t for s in event.sessions for t in (s.start - WINDOW, s.start, s.end) if t > now}
        )
        seen: list[tuple[str, str]] = []
        for boundary in boundaries:
            clock.set(boundary)
            await asyncio.sleep(0.005)
            while (item := sub.get_nowait()) is not None:
                if item.type in ("session.started", "session.ended"):
                    seen.append((item.type.removeprefix("session."), item.data["session"]))
        expected_started = {s.id for s in event.sessions if s.start > now}
        expected_ended = {s.id for s in event.sessions if s.end > now}
        assert sorted(i for k, i in seen if k == "started") == sorted(expected_started)
        assert sorted(i for k, i in seen if k == "ended") == sorted(expected_ended)
        assert seen.index(("started", "afternoon")) < seen.index(("ended", "afternoon"))
        assert metrics.stage_live.labels(stage="main")._value.get() == 0
        assert all(scheduler.status(s.id).state is StageState.ENDED for s in event.stages)
    finally:
        task.cancel()


async def test_delay_wakes_the_scheduler_and_moves_the_boundary(event: Event) -> None:
    clock = ManualClock(at("2020-12-06T09:30:00+08:00"))
    bus = EventBus()
    service = ScheduleService(event, MemoryStore("t"), bus)
    scheduler = Scheduler(service, clock, bus, upcoming=WINDOW)
    sub = bus.subscribe()
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.sleep(0.01)
        await service.delay("main", 20, at=clock.now(), by="test")
        delayed = await next_event(sub, "stage.delayed")
        assert (delayed.stage, delayed.data["minutes"], delayed.data["total_minutes"]) == ("main", 20, 20)
        clock.set(at("2020-12-06T10:00:00+08:00"))  # the old end: nothing happens on main
        await asyncio.sleep(0.01)
        assert scheduler.status("main").current is not None
        assert scheduler.status("main").current.id == "opening"  # type: ignore[union-attr]
        clock.set(at("2020-12-06T10:20:00+08:00"))  # the new end
        started = await next_event(sub, "session.started")
        while started.stage != "main":
            started = await next_event(sub, "session.started")
        assert started.data["session"] == "keynote"
    finally:
        task.cancel()


async def test_delays_survive_a_restart_through_the_store(event: Event) -> None:
    store = MemoryStore("t")
    first = ScheduleService(event, store, EventBus())
    await first.delay("main", 10, at=at("2020-12-06T09:30:00+08:00"))
    await first.delay("main", -5, at=at("2020-12-06T09:40:00+08:00"))
    second = ScheduleService(event, store, EventBus())
    await second.load()
    assert second.event == first.event
    assert second.delay_totals == {"main": 5}
