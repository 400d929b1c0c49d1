"""Where every stage is in its program, and the timer task that moves it along.

:func:`stage_status` is pure: given a stage's sessions and an instant it says the stage's
state, current and next session. :class:`Scheduler` runs one asyncio task that sleeps until
the next session boundary of any stage (no polling), recomputes every stage there, and
publishes what changed on the event bus. Boundaries are recomputed from the effective
program each time, so delays take effect at once and no drift accumulates.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.clock import Clock
from server.events import BusEvent, EventBus
from server.metrics import Metrics
from server.schedule.model import Event, Session
from server.schedule.service import ScheduleService

log = logging.getLogger("forumcast.scheduler")

#: Default minutes before a session during which its stage is "upcoming".
UPCOMING_MINUTES = 15


class StageState(enum.Enum):
    IDLE = "idle"  # nothing on today yet (or no sessions at all)
    UPCOMING = "upcoming"  # a session starts within the upcoming window
    LIVE = "live"  # a session is running
    BETWEEN = "between"  # a break between two sessions of the same day
    ENDED = "ended"  # the stage's last session is over


@dataclass(frozen=True, slots=True)
class StageStatus:
    state: StageState
    current: Session | None = None
    next: Session | None = None
    previous: Session | None = None


def stage_status(sessions: Sequence[Session], now: datetime, *, upcoming: timedelta) -> StageStatus:
    """The state of one stage at ``now``; ``sessions`` sorted by start."""
    current = next((s for s in sessions if s.is_live(now)), None)
    following = next((s for s in sessions if s.start > now), None)
    previous = next((s for s in reversed(sessions) if s.end <= now), None)
    if current is not None:
        return StageStatus(StageState.LIVE, current, following, previous)
    if following is None:
        state = StageState.ENDED if previous is not None else StageState.IDLE
        return StageStatus(state, None, None, previous)
    if following.start - now <= upcoming:
        return StageStatus(StageState.UPCOMING, None, following, previous)
    # A break is "between" only within one day of the venue; overnight the stage is idle.
    zone = following.start.tzinfo
    same_day = previous is not None and previous.end.astimezone(zone).date() == following.start.date()
    return StageStatus(StageState.BETWEEN if same_day else StageState.IDLE, None, following, previous)


def next_boundary(sessions: Sequence[Session], now: datetime, *, upcoming: timedelta) -> datetime | None:
    """The first instant after ``now`` at which :func:`stage_status` may change."""
    candidates = [t for s in sessions for t in (s.start - upcoming, s.start, s.end) if t > now]
    return min(candidates, default=None)


class Scheduler:
    """Keeps every stage's :class:`StageStatus` current and announces changes."""

    def __init__(
        self,
        schedule: ScheduleService,
        clock: Clock,
        bus: EventBus,
        *,
        upcoming: timedelta = timedelta(minutes=UPCOMING_MINUTES),
        metrics: Metrics | None = None,
    ) -> None:
        self._schedule = schedule
        self._clock = clock
        self._bus = bus
        self._upcoming = upcoming
        self._metrics = metrics
        self._status: dict[str, StageStatus] = {}
        self._wake = asyncio.Event()
        self.lag_seconds = 0.0
        schedule.on_change(self.wake)

    @property
    def event(self) -> Event:
        """The event as it stands now (delays applied)."""
        return self._schedule.event

    def wake(self) -> None:
        """Recompute now (the program changed)."""
        self._wake.set()

    def status(self, stage: str, at: datetime | None = None) -> StageStatus:
        """The stage's status at ``at`` (default now), computed afresh from the program."""
        sessions = self._schedule.event.sessions_of(stage)
        return stage_status(sessions, at or self._clock.now(), upcoming=self._upcoming)

    def tick(self, *, announce: bool = True) -> datetime | None:
        """Recompute every stage at the clock's now; publish changes; return the next boundary."""
        now = self._clock.now()
        event = self._schedule.event
        boundaries = []
        for stage in event.stages:
            sessions = event.sessions_of(stage.id)
            new = stage_status(sessions, now, upcoming=self._upcoming)
            old = self._status.get(stage.id)
            self._status[stage.id] = new
            if announce and old is not None:
                self._announce(stage.id, old, new, now)
            if self._metrics is not None:
                self._metrics.stage_live.labels(stage=stage.id).set(1 if new.state is StageState.LIVE else 0)
            boundary = next_boundary(sessions, now, upcoming=self._upcoming)
            if boundary is not None:
                boundaries.append(boundary)
        return min(boundaries, default=None)

    def _announce(self, stage: str, old: StageStatus, new: StageStatus, now: datetime) -> None:
        if old.current is not None and (new.current is None or new.current.id != old.current.id):
            self._publish("session.ended", stage, now, old.current)
        if new.current is not None and (old.current is None or old.current.id != new.current.id):
            self._publish("session.started", stage, now, new.current)
        if old.state is not new.state:
            log.info("stage %s: %s -> %s", stage, old.state.value, new.state.value)
            self._bus.publish(
                BusEvent("stage.state", now, stage, {"from": old.state.value, "to": new.state.value})
            )

    def _publish(self, kind: str, stage: str, now: datetime, session: Session) -> None:
        log.info("stage %s: %s %s (%s)", stage, kind, session.id, session.title.best())
        self._bus.publish(
            BusEvent(kind, now, stage, {"session": session.id, "title": session.title.to_json()})
        )

    async def run(self) -> None:
        """Sleep until each boundary in turn (or until woken by a change) and tick there."""
        deadline = self.tick(announce=False)
        while True:
            self._wake.clear()
            sleeper = asyncio.ensure_future(
                self._clock.sleep_until(deadline) if deadline is not None else asyncio.Event().wait()
            )
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if deadline is not None and sleeper.done() and not sleeper.cancelled():
                self.lag_seconds = max(0.0, (self._clock.now() - deadline).total_seconds())
                if self._metrics is not None:
                    self._metrics.scheduler_lag.set(self.lag_seconds)
            deadline = self.tick()
