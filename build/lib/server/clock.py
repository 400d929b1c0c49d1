"""Time as the service sees it: one :class:`Clock` to read and to wait on, for every timer.

Nothing in the schedule or the live path calls ``datetime.now``, ``time.monotonic``,
``time.time`` or ``asyncio.sleep`` itself: it asks the clock it was given. Production runs
on the :class:`SystemClock`; tests and rehearsals run whole days of program on a
:class:`ManualClock`, which moves only when told to (``rate=0``) or runs at a multiple of
real time from a chosen instant (``rate=1`` for real-time media on a shifted date,
``rate=100`` for a rehearsal), and can always be jumped forward.

Three readings of one instant: :meth:`Clock.now` (an aware datetime, for the schedule),
:meth:`Clock.wall` (seconds since the epoch, for program date times and ``prft``) and
:meth:`Clock.monotonic` (seconds, only for differences: stalls, failback, rates). Deadlines
of the schedule are absolute instants: whoever sleeps computes the next boundary from the
program, never by adding up sleeps, so no drift accumulates.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None:
        """The callback will not run (no effect once it has)."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""

    def wall(self) -> float:
        """The current instant in seconds since the Unix epoch."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time (at once if not positive)."""

    async def sleep_until(self, deadline: datetime) -> None:
        """Return at or after ``deadline`` (at once if it has passed)."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` on the event loop after ``delay`` seconds of this clock's time."""


class SystemClock:
    """Real time; timers on the event loop's monotonic timer."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, deadline: datetime) -> None:
        # Loop because the wall clock may be stepped (NTP) while we sleep on the
        # monotonic one: wake, look at the wall clock again, sleep the remainder.
        while (remaining := (deadline - self.now()).total_seconds()) > 0:  # noqa: ASYNC110 - one wake per deadline
            await asyncio.sleep(remaining)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)


#: Seconds within which a timer counts as due (float sums of steps land a hair early).
_EPSILON = 1e-9


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that starts at ``start`` and moves at ``rate`` × real time (0: only when told).

    Like a real machine's, its wall clock can be stepped without time passing: :meth:`set`
    jumps the wall clock forward (the schedule sees the new instant, as after an NTP step)
    and leaves :meth:`monotonic` alone, so the live path's stall and failback timers do not
    see a jump as silence. :meth:`advance` and :meth:`run` let time pass: both readings move
    and every timer they pass runs, in deadline order. With a positive rate the clock also
    runs on its own and an event-loop timer wakes the earliest sleeper when its moment comes.
    """

    def __init__(self, start: datetime, *, rate: float = 0.0) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        if rate < 0:
            raise ValueError("ManualClock's rate cannot be negative")
        self.rate = rate
        self._origin = start.astimezone(UTC)
        self._elapsed = 0.0  # seconds that passed up to real moment _real_base
        self._real_base = time.monotonic()
        self._stepped = timedelta()  # how far set() moved the wall clock beyond the time passed
        self._wall_timers: list[tuple[datetime, int, _ManualTimer]] = []
        self._mono_timers: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()
        self._armed: asyncio.TimerHandle | None = None

    # -- reading ----------------------------------------------------------------------------

    def monotonic(self) -> float:
        if not self.rate:
            return self._elapsed
        return self._elapsed + (time.monotonic() - self._real_base) * self.rate

    def now(self) -> datetime:
        return self._origin + self._stepped + timedelta(seconds=self.monotonic())

    def wall(self) -> float:
        return self.now().timestamp()

    # -- waiting ----------------------------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer(callback)
        deadline = self.monotonic() + max(0.0, delay)
        heapq.heappush(self._mono_timers, (deadline, next(self._order), timer))
        self._arm()
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_later(seconds, functools.partial(_resolve, future))
        try:
            await future
        finally:
            timer.cancel()

    async def sleep_until(self, deadline: datetime) -> None:
        if deadline <= self.now():
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = _ManualTimer(functools.partial(_resolve, future))
        heapq.heappush(self._wall_timers, (deadline.astimezone(UTC), next(self._order), timer))
        self._arm()
        try:
            await future
        finally:
            timer.cancel()

    # -- moving -----------------------------------------------------------------------------

    def set(self, moment: datetime) -> None:
        """Step the wall clock to ``moment`` (never backwards) without time passing."""
        step = moment.astimezone(UTC) - self.now()
        if step < timedelta():
            raise ValueError("ManualClock does not go backwards")
        self._stepped += step
        self._fire()

    def advance(self, delta: timedelta | float) -> None:
        """Let ``delta`` pass: the wall clock and the monotonic clock move, timers run."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else delta
        if seconds < 0:
            raise ValueError("ManualClock does not go backwards")
        self._elapsed = self.monotonic() + seconds
        self._real_base = time.monotonic()
        self._fire()

    async def run(self, seconds: float, *, step: float = 0.1, yields: int = 4) -> None:
        """Let ``seconds`` pass in steps of ``step``, letting the loop run between steps.

        After each step every task the step woke gets ``yields`` turns of the event loop, so
        a chain of wake-ups (a timer, the task it wakes, the futures that task resolves)
        settles before the clock moves on. Whole hours of program take seconds this way.
        """
        start = self.monotonic()
        steps = max(1, math.ceil(seconds / step - _EPSILON))
        for k in range(1, steps + 1):
            # Each step lands on start + k × step (no sum of rounded steps drifts away).
            self.advance(max(0.0, min(start + k * step, start + seconds) - self.monotonic()))
            for _ in range(yields):
                await asyncio.sleep(0)

    def _fire(self) -> None:
        while True:
            mono, now = self.monotonic(), self.now()
            due: _ManualTimer | None = None
            if self._mono_timers and self._mono_timers[0][0] <= mono + _EPSILON:
                due = heapq.heappop(self._mono_timers)[2]
            elif self._wall_timers and self._wall_timers[0][0] <= now:
                due = heapq.heappop(self._wall_timers)[2]
            if due is None:
                break
            if not due.cancelled:
                due.cancelled = True
                due.callback()
        self._arm()

    def _arm(self) -> None:
        """With a running clock: an event-loop timer for the earliest deadline."""
        if not self.rate:
            return
        if self._armed is not None:
            self._armed.cancel()
            self._armed = None
        while self._mono_timers and self._mono_timers[0][2].cancelled:
            heapq.heappop(self._mono_timers)
        while self._wall_timers and self._wall_timers[0][2].cancelled:
            heapq.heappop(self._wall_timers)
        delays = []
        if self._mono_timers:
            delays.append(self._mono_timers[0][0] - self.monotonic())
        if self._wall_timers:
            delays.append((self._wall_timers[0][0] - self.now()).total_seconds())
        if not delays:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # armed by the first timer set from inside the loop
        self._armed = loop.call_later(max(0.0, min(delays)) / self.rate, self._fire)
