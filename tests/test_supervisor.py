"""Supervised tasks (server/supervisor.py) on a manual clock: a failure is logged with its
traceback, counted, reported, and the task restarted after a backoff that grows."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.clock import ManualClock
from server.metrics import Metrics
from server.supervisor import Supervisor, TaskState
from tests.conftest import at


def failures(metrics: Metrics, task: str) -> float:
    value = metrics.registry.get_sample_value("forumcast_task_failures_total", {"task": task})
    return -1.0 if value is None else value


def up(metrics: Metrics, task: str) -> float | None:
    return metrics.registry.get_sample_value("forumcast_task_up", {"task": task})


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_failing_task_is_logged_counted_reported_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(at("2020-12-06T09:00:00+08:00"))
    metrics = Metrics()
    supervisor = Supervisor(clock, metrics, backoff=1.0, max_backoff=4.0, healthy_after=30.0)
    runs: list[float] = []

    async def flaky() -> None:
        runs.append(clock.monotonic())
        if len(runs) <= 3:
            raise ValueError(f"boom {len(runs)}")
        await asyncio.Event().wait()  # the fourth run keeps running

    with caplog.at_level(logging.ERROR, logger="forumcast.tasks"):
        supervisor.start("flaky", flaky)
        await settle()
    status = supervisor.status["flaky"]
    assert runs == [0.0]
    assert status.state is TaskState.RESTARTING and status.failures == 1
    assert status.last_error == "ValueError: boom 1"
    assert [s.name for s in supervisor.down()] == ["flaky"]
    assert failures(metrics, "flaky") == 1.0 and up(metrics, "flaky") == 0.0
    (record,) = [r for r in caplog.records if "flaky" in r.getMessage()]
    assert record.exc_info is not None and "boom 1" in str(record.exc_info[1])

    # The backoff is on the service clock and doubles: restarts at 1 s, then 1 + 2 s, then 3 + 4 s.
    await clock.run(0.9, step=0.1)
    assert runs == [0.0]
    await clock.run(10.0, step=0.1)
    assert [round(t, 1) for t in runs] == [0.0, 1.0, 3.0, 7.0]
    assert status.state is TaskState.RUNNING and status.failures == 3
    assert supervisor.down() == []
    assert failures(metrics, "flaky") == 3.0 and up(metrics, "flaky") == 1.0
    await supervisor.close()
    assert up(metrics, "flaky") == 0.0 and supervisor.status == {}


async def test_a_task_that_returns_is_finished_and_cancellation_is_not_a_failure() -> None:
    clock = ManualClock(at("2020-12-06T09:00:00+08:00"))
    metrics = Metrics()
    supervisor = Supervisor(clock, metrics)

    async def done() -> None:
        return None

    async def forever() -> None:
        await asyncio.Event().wait()

    supervisor.start("done", done)
    supervisor.start("forever", forever)
    await settle()
    assert supervisor.status["done"].state is TaskState.FINISHED
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.start("forever", forever)
    await supervisor.stop("forever")
    assert failures(metrics, "forever") == 0.0 and failures(metrics, "done") == 0.0
    await supervisor.close()


async def test_a_task_that_swallows_its_cancellation_is_stopped_all_the_same() -> None:
    # As redis-py's blocking reads sometimes do (redis/redis-py#2028): the loop would run on.
    supervisor = Supervisor(ManualClock(at("2020-12-06T09:00:00+08:00")), Metrics())
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    supervisor.start("stubborn", stubborn)
    await settle()
    await asyncio.wait_for(supervisor.stop("stubborn"), timeout=5)
    assert swallowed == 1
