"""The event's program as immutable values: event, venues, stages, inputs, sessions.

Times are aware datetimes in the zone of the session's venue (the Lyon session in
Europe/Paris, everything else in Asia/Shanghai). Loaders build these values and refuse
anything inconsistent (see :mod:`server.schedule.validate`); the rest of the service only
reads them. A delay never mutates an event: :meth:`Event.with_sessions` makes a new one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


def add_absolute(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta`` in elapsed time, expressed in ``moment``'s own zone."""
    return (moment.astimezone(UTC) + delta).astimezone(moment.tzinfo)


@dataclass(frozen=True, slots=True)
class Text:
    """A title or description in Chinese and English (either may be empty)."""

    zh: str = ""
    en: str = ""

    def best(self, lang: str = "en") -> str:
        first, second = (self.zh, self.en) if lang.startswith("zh") else (self.en, self.zh)
        return first or second

    def to_json(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


class StageKind(enum.Enum):
    MAIN = "main"
    FORUM = "forum"
    CLOSED_DOOR = "closed-door"
    SIDE = "side"


class InputKind(enum.Enum):
    """Where an input's picture comes from."""

    CAMERA = "camera"  # the venue's camera mix, published by an on-site encoder
    REMOTE = "remote"  # a remote speaker's browser or encoder (e.g. the UK keynote)
    ENCODER = "encoder"  # any other encoder (playout, screen capture)


@dataclass(frozen=True, slots=True)
class Venue:
    id: str
    name: Text
    timezone: ZoneInfo
    city: str = ""


@dataclass(frozen=True, slots=True)
class InputDecl:
    """A publisher declared for a stage (the stream itself arrives later, by id)."""

    id: str
    stage: str
    title: str
    kind: InputKind = InputKind.CAMERA


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    title: Text
    kind: StageKind
    venue: str
    closed: bool = False
    inputs: tuple[InputDecl, ...] = ()
    description: Text = field(default_factory=Text)


@dataclass(frozen=True, slots=True)
class Speaker:
    name: str
    remote: bool = False
    affiliation: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    stage: str
    title: Text
    start: datetime
    end: datetime
    speakers: tuple[Speaker, ...] = ()
    track: str = ""
    type: str = "talk"
    language: str = "zh"
    do_not_stream: bool = False
    abstract: Text = field(default_factory=Text)
    input: str | None = None
    backup_input: str | None = None

    @property
    def duration(self) -> timedelta:
        # Through UTC: two datetimes sharing one ZoneInfo subtract as wall-clock times.
        return self.end.astimezone(UTC) - self.start.astimezone(UTC)

    def is_live(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def shifted(self, delta: timedelta, *, end_only: bool = False) -> Session:
        """Move by absolute time (not wall-clock time: a shift across a DST change
        keeps the instant right), staying in the venue's zone."""
        end = add_absolute(self.end, delta)
        if end_only:
            return replace(self, end=end)
        return replace(self, start=add_absolute(self.start, delta), end=end)


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    title: Text
    timezone: ZoneInfo
    venues: tuple[Venue, ...]
    stages: tuple[Stage, ...]
    sessions: tuple[Session, ...]
    theme: Text = field(default_factory=Text)
    url: str = ""
    demo: bool = False

    def stage(self, stage_id: str) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)

    def venue(self, venue_id: str) -> Venue | None:
        return next((v for v in self.venues if v.id == venue_id), None)

    def venue_of(self, stage: Stage) -> Venue:
        venue = self.venue(stage.venue)
        assert venue is not None, "validated at load time"
        return venue

    def session(self, session_id: str) -> Session | None:
        return next((s for s in self.sessions if s.id == session_id), None)

    def sessions_of(self, stage_id: str) -> list[Session]:
        return sorted((s for s in self.sessions if s.stage == stage_id), key=lambda s: s.start)

    def inputs(self) -> Iterator[InputDecl]:
        for stage in self.stages:
            yield from stage.inputs

    @property
    def start(self) -> datetime:
        return min(s.start for s in self.sessions)

    @property
    def end(self) -> datetime:
        return max(s.end for s in self.sessions)

    def days(self) -> list[date]:
        """Calendar days of the program in the event's own time zone."""
        first = self.start.astimezone(self.timezone).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(self.timezone).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def with_sessions(self, sessions: Iterable[Session]) -> Event:
        return replace(self, sessions=tuple(sessions))

    def shifted(self, delta: timedelta) -> Event:
        """The same program moved in time (the demo uses it to be live now)."""
        return self.with_sessions(s.shifted(delta) for s in self.sessions)

    def public_stage_ids(self) -> set[str]:
        return {s.id for s in self.stages if not s.closed}
