"""Which source a stage's program should show, and why: the schedule, the producer, failures.

Pure decisions, no I/O and no clock of its own: :meth:`Automation.decide` is given the
session on now, each input's health and what the program is showing (or about to show), and
answers with a :class:`Choice` when the program should move. The adapter in
:mod:`server.live.program` calls it on every session change, every publisher change and
every supervision tick, and carries the choice out through the switcher.

The rules, in order:

- **Manual** (after a producer's take): the taken source stays on air. If it is an input
  and it goes down, the program fails over (to the session's backup if that is up, else the
  slate) and stays manual on that fallback: a manual take is never overridden by failback;
  the producer takes again or returns to automation.
- **Automatic, no session** (before the first, between sessions, after the last, or a
  session marked do-not-stream): the slate.
- **Automatic, a session**: its input (or the stage's first input when it names none). If
  that input is down: the session's backup input if it is up, else the slate (reason
  ``failover`` when the input was on air or was failed away from; ``schedule`` when it simply
  has not started publishing). When the input comes back after a failover, automation
  fails back once it has been up for ``failback_after`` seconds; an input that has not been
  on air in this session yet is taken as soon as it is up.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from server.schedule.model import Session

#: The source name of a stage's stand-by picture.
SLATE = "slate"

#: Default seconds a returning input must stay up before automation fails back to it.
FAILBACK_AFTER = 2.0
#: Default seconds without any bytes from the publisher after which an input counts as
#: down (stalled). Bytes count, not only whole fragments: a browser's MediaRecorder sends
#: a chunk every few hundred milliseconds but completes a fragment only at a keyframe.
STALL_AFTER = 1.0
#: Seconds a publisher may send bytes without completing a fragment before it counts as
#: down anyway (an encoder stuck mid-fragment).
MAX_FRAGMENT_GAP = 5.0


class Mode(enum.Enum):
    AUTO = "auto"
    MANUAL = "manual"


class Reason(enum.Enum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    FAILOVER = "failover"
    FAILBACK = "failback"


@dataclass(frozen=True, slots=True)
class Health:
    """An input as automation sees it: ``up`` (publishing fresh fragments) and for how long."""

    up: bool
    up_for: float = 0.0


@dataclass(frozen=True, slots=True)
class Choice:
    source: str
    reason: Reason


class Automation:
    """One stage's automation state: its mode and what it failed away from."""

    def __init__(self, *, default_input: str | None, failback_after: float = FAILBACK_AFTER) -> None:
        self.default_input = default_input
        self.failback_after = failback_after
        self.mode = Mode.AUTO
        #: The producer's choice in manual mode.
        self.manual: str | None = None
        #: The session whose primary input failed (so its return is a failback).
        self._failed: tuple[str, str] | None = None  # (session id, input id)

    def take(self, source: str) -> Choice:
        """A producer's take: manual mode on ``source`` (the caller checked it is up)."""
        self.mode = Mode.MANUAL
        self.manual = source
        return Choice(source, Reason.MANUAL)

    def resume(self) -> None:
        """Back to the schedule; the next :meth:`decide` says what should be on air."""
        self.mode = Mode.AUTO
        self.manual = None

    def decide(
        self, session: Session | None, health: Mapping[str, Health], target: str | None
    ) -> Choice | None:
        """What the program should move to, or None to stay on ``target`` (the source on air,
        or the one a switch is pending to)."""

        def up(source: str | None) -> bool:
            return source == SLATE or (source is not None and source in health and health[source].up)

        if self.mode is Mode.MANUAL:
            assert self.manual is not None
            if up(self.manual):
                return None if target == self.manual else Choice(self.manual, Reason.MANUAL)
            backup = session.backup_input if session is not None else None
            fallback = backup if backup != self.manual and up(backup) else SLATE
            assert fallback is not None
            self.manual = fallback  # manual stays manual: no failback over a producer's take
            return None if target == fallback else Choice(fallback, Reason.FAILOVER)

        if session is None or session.do_not_stream:
            self._failed = None
            return None if target == SLATE else Choice(SLATE, Reason.SCHEDULE)
        primary = session.input or self.default_input
        if self._failed is not None and self._failed[0] != session.id:
            self._failed = None  # a new session starts with a clean slate
        failed = self._failed is not None and self._failed[1] == primary
        if primary is not None and up(primary):
            if target == primary:
                return None
            if failed:
                if health[primary].up_for < self.failback_after:
                    return None  # wait until it has been stable for a while
                self._failed = None
                return Choice(primary, Reason.FAILBACK)
            return Choice(primary, Reason.SCHEDULE)
        backup = session.backup_input
        fallback = backup if backup is not None and backup != primary and up(backup) else SLATE
        if target == primary and primary is not None:
            self._failed = (session.id, primary)
            return Choice(fallback, Reason.FAILOVER)
        if target == fallback:
            return None
        # The primary never came up this session, or the backup we were on went down too.
        reason = Reason.FAILOVER if failed or (backup is not None and target == backup) else Reason.SCHEDULE
        return Choice(fallback, reason)


def on_bill(session: Session | None, default_input: str | None) -> frozenset[str]:
    """The inputs a live session expects to publish: its input (or the stage's first) and
    its backup; none between sessions or for a session marked do-not-stream."""
    if session is None or session.do_not_stream:
        return frozenset()
    return frozenset(i for i in (session.input or default_input, session.backup_input) if i is not None)
