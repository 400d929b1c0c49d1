"""Long-lived tasks that never die silently: started, watched, restarted with backoff.

Every background loop of the service (the scheduler, the live ticks, the demo publishers,
the exhibition's rescans) runs under one :class:`Supervisor`. When a task raises, the
supervisor logs the traceback, counts the failure (``forumcast_task_failures_total{task}``),
marks the task down (``forumcast_task_up{task}`` 0, and ``/readyz`` answers 503 naming it),
waits a backoff on the service clock (doubling from ``backoff`` up to ``max_backoff``,
back to ``backoff`` once a run has lasted ``healthy_after``) and starts the task again
from its factory. A task that returns has finished its work and is not restarted.

Cancellation is never swallowed: stopping the supervisor cancels every task and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from server.clock import Clock
from server.metrics import Metrics

log = logging.getLogger("forumcast.tasks")

#: First wait before a failed task is restarted, seconds (doubles per failure in a row).
BACKOFF = 0.5
#: Longest wait before a restart, seconds.
MAX_BACKOFF = 30.0
#: A run that lasted this long resets the backoff, seconds.
HEALTHY_AFTER = 30.0
#: Seconds to wait for a cancelled task before cancelling it again (see Supervisor.stop).
RECANCEL_AFTER = 0.1

Factory = Callable[[], Coroutine[Any, Any, Any]]


class TaskState(enum.Enum):
    RUNNING = "running"
    RESTARTING = "restarting"  # failed; waiting for its backoff before the next start
    FINISHED = "finished"


@dataclass(slots=True)
class TaskStatus:
    name: str
    state: TaskState = TaskState.RUNNING
    failures: int = 0
    last_error: str | None = None

    def json(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "ok": self.state is not TaskState.RESTARTING,
            "failures": self.failures,
            "last_error": self.last_error,
        }


class Supervisor:
    def __init__(
        self,
        clock: Clock,
        metrics: Metrics,
        *,
        backoff: float = BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        healthy_after: float = HEALTHY_AFTER,
    ) -> None:
        self._clock = clock
        self._metrics = metrics
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._healthy_after = healthy_after
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.status: dict[str, TaskStatus] = {}

    def start(self, name: str, factory: Factory) -> None:
        """Run ``factory()`` as the task ``name``, restarting it whenever it fails."""
        if name in self._tasks and not self._tasks[name].done():
            raise ValueError(f"task {name!r} is already supervised")
        self.status[name] = TaskStatus(name)
        self._metrics.task_failures.labels(task=name)
        self._metrics.task_up.labels(task=name).set(1)
        self._tasks[name] = asyncio.create_task(self._watch(name, factory), name=f"forumcast-{name}")

    async def stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        self.status.pop(name, None)
        if task is None:
            return
        # Cancel until it is done: a library may swallow a cancellation (redis-py's blocking
        # reads do, redis/redis-py#2028), and a loop around such a call would run on, holding
        # up the shutdown. A guard against that bug, on the event loop's own time.
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=RECANCEL_AFTER)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._metrics.task_up.labels(task=name).set(0)

    @contextlib.asynccontextmanager
    async def running(self, name: str, factory: Factory) -> AsyncIterator[None]:
        """The task ``name`` supervised while the block runs (for ``cleanup_ctx``)."""
        self.start(name, factory)
        try:
            yield
        finally:
            await self.stop(name)

    async def close(self) -> None:
        for name in list(self._tasks):
            await self.stop(name)

    def down(self) -> list[TaskStatus]:
        """The tasks waiting to be restarted after a failure."""
        return [s for s in self.status.values() if s.state is TaskState.RESTARTING]

    async def _watch(self, name: str, factory: Factory) -> None:
        status = self.status[name]
        up = self._metrics.task_up.labels(task=name)
        delay = self._backoff
        while True:
            started = self._clock.monotonic()
            status.state = TaskState.RUNNING
            up.set(1)
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                status.failures += 1
                status.last_error = f"{type(exc).__name__}: {exc}"
                status.state = TaskState.RESTARTING
                up.set(0)
                self._metrics.task_failures.labels(task=name).inc()
                if self._clock.monotonic() - started >= self._healthy_after:
                    delay = self._backoff
                log.exception(
                    "task %s failed (failure %d); restarting in %.1f s", name, status.failures, delay
                )
                await self._clock.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
                log.info("task %s restarting", name)
                continue
            status.state = TaskState.FINISHED
            return
