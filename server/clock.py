"""Time as the service sees it: a :class:`Clock` to read and to sleep on.

The scheduler never calls ``datetime.now`` or ``asyncio.sleep`` itself, so that tests can
run days of program in milliseconds on a :class:`ManualClock` and production runs on the
:class:`SystemClock`. Deadlines are absolute instants: whoever sleeps computes the next
boundary from the schedule, never by adding up sleeps, so no drift accumulates.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""

    async def sleep_until(self, deadline: datetime) -> None:
        """Return at or after ``deadline`` (at once if it has passed)."""


class SystemClock:
    """Wall-clock time; sleeps on the event loop's monotonic timer."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: datetime) -> None:
        # Loop because the wall clock may be stepped (NTP) while we sleep on the
        # monotonic one: wake, look at the wall clock again, sleep the remainder.
        while (remaining := (deadline - self.now()).total_seconds()) > 0:  # noqa: ASYNC110 - one wake per deadline
            await asyncio.sleep(remaining)


class ManualClock:
    """A clock that only moves when told to; sleepers wake when it passes their deadline."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, deadline: datetime) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        await future

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (never backwards) and wake every sleeper it passes."""
        moment = moment.astimezone(UTC)
        if moment < self._now:
            raise ValueError("ManualClock does not go backwards")
        self._now = moment
        while self._sleepers and self._sleepers[0][0] <= moment:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)
