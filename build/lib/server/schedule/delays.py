"""Stage delays: how a producer's "we are running N minutes late" reshapes the program.

Pure functions over :class:`Event` values. A delay is recorded as the instant it was asked
for and its minutes; the effective program is the loaded program with every recorded delay
replayed in order, so it is the same on every instance and after every restart.

At instant ``at`` on a stage, a delay of ``minutes``:

* extends the running session (if any) by ``minutes`` and moves every later session of
  that stage by the same amount;
* between sessions, moves every session that has not started yet.

Negative minutes pull the program in, but never so far that the running session would
already have ended, or that a moved session would start in the past.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from server.errors import ForumcastError
from server.schedule.model import Event, Session

#: The largest single delay a producer may ask for, either way.
MAX_DELAY_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class Delay:
    stage: str
    at: datetime
    minutes: int
    by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "at": self.at.isoformat(), "minutes": self.minutes, "by": self.by}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delay:
        return cls(
            str(data["stage"]),
            datetime.fromisoformat(data["at"]),
            int(data["minutes"]),
            str(data.get("by", "")),
        )


def check_minutes(value: Any) -> int:
    """The minutes of a delay request, or a ``schedule.bad_delay`` error saying why not."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ForumcastError("schedule.bad_delay", f"'minutes' must be a whole number, got {value!r}")
    if value == 0 or abs(value) > MAX_DELAY_MINUTES:
        raise ForumcastError(
            "schedule.bad_delay", f"'minutes' must be non-zero and at most {MAX_DELAY_MINUTES} either way"
        )
    return value


def apply_delay(event: Event, delay: Delay) -> Event:
    """``event`` with ``delay`` applied, or ``schedule.delay_conflict`` if it cannot apply."""
    delta = timedelta(minutes=delay.minutes)
    at = delay.at
    stage_sessions = event.sessions_of(delay.stage)
    running = next((s for s in stage_sessions if s.is_live(at)), None)
    moved: dict[str, Session] = {}
    if running is not None:
        extended = running.shifted(delta, end_only=True)
        if extended.end <= at:
            raise ForumcastError(
                "schedule.delay_conflict",
                f"session {running.id!r} would already have ended; pull in at most "
                f"{math.ceil((running.end - at) / timedelta(minutes=1)) - 1} minutes",
            )
        moved[running.id] = extended
        later = [s for s in stage_sessions if s.start >= running.end]
    else:
        later = [s for s in stage_sessions if s.start >= at]
        if not later:
            raise ForumcastError(
                "schedule.delay_conflict", f"stage {delay.stage!r} has nothing left to delay"
            )
        if later[0].start + delta < at:
            raise ForumcastError(
                "schedule.delay_conflict",
                f"session {later[0].id!r} would start in the past; pull in at most "
                f"{(later[0].start - at) // timedelta(minutes=1)} minutes",
            )
    for session in later:
        moved[session.id] = session.shifted(delta)
    return event.with_sessions(moved.get(s.id, s) for s in event.sessions)


def replay(event: Event, delays: Iterable[Delay]) -> Event:
    """The effective program: ``event`` with every delay applied in order.

    A recorded delay that no longer applies (the base program changed under it) is
    skipped rather than refusing to start the service.
    """
    for delay in delays:
        try:
            event = apply_delay(event, delay)
        except ForumcastError:
            continue
    return event
