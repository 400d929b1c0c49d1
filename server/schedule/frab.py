"""The frab / pretalx ``schedule.json`` format: exporting an event and importing one.

Export (:func:`to_frab`) writes the document that pretalx and frab publish and that the
c3voc schedule schema describes (``schedule.conference.days[].rooms{name: [events]}``), so
that players, recording and subtitle tools of that ecosystem can read our program. Only
public stages are exported unless the caller names the stages to include.

Import (:func:`parse_frab`, :func:`load_frab_text`, :func:`load_frab`) reads such a
document written by pretalx or frab into an :class:`Event`. Like the YAML loader it
collects every problem with a JSON-path-like location (``schedule.conference.days[1].
rooms.Main[0].date``) and lets :func:`~server.schedule.validate.check_event` add the
cross-reference ones, all reported in one :class:`~server.errors.ScheduleError`.

frab has no notion of venues or stage kinds: an imported event has one venue in the
conference time zone and every room becomes a forum stage.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Collection
from contextlib import suppress
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.errors import Problem, ScheduleError
from server.schedule.model import (
    Event,
    Session,
    Speaker,
    Stage,
    StageKind,
    Text,
    Venue,
    add_absolute,
)
from server.schedule.validate import check_event

SCHEMA_URL = "https://c3voc.de/schedule/schema.json"

# All generated guids live under one namespace, so the same event, stage and session ids
# always give the same guids and consumers can follow a session across exports.
_GUIDS = uuid.uuid5(uuid.NAMESPACE_DNS, "schedule.forumcast")

# Patterns of the c3voc schema that our ids and zone names do not always satisfy.
_SLUG = re.compile(r"[a-z0-9_-]+[a-z0-9]")
_ACRONYM = re.compile(r"[a-z0-9_-][a-z0-9_]{3,}(-2[0-9]{3}-[a-z]+)?")
# Used with search(), as JSON Schema does: the alternation leaves each branch half-anchored.
_ZONE_NAME = re.compile(r"^([A-Z][a-z]+/[A-Z][a-z]+)|UTC$")
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
_DURATION = re.compile(r"(-?)([0-9]+):([0-5][0-9])(?::([0-5][0-9]))?")
_CJK = re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_ROOM_TYPES = {
    StageKind.MAIN: "stage",
    StageKind.FORUM: "lecturehall",
    StageKind.CLOSED_DOOR: "lecturehall",
    StageKind.SIDE: "other",
}
_VENUE_ID = "venue"


# --- shared with the iCal export --------------------------------------------------------


def included_stages(event: Event, stages: Collection[str] | None) -> list[Stage]:
    """The stages an export shows: those named, or by default every stage that is not closed.

    Naming a closed stage is how an organiser publishes a closed seminar on purpose;
    unknown names are ignored so that a stale list cannot break the export.
    """
    if stages is None:
        return [s for s in event.stages if not s.closed]
    wanted = set(stages)
    return [s for s in event.stages if s.id in wanted]


def session_url(base_url: str, session_id: str) -> str:
    return f"{base_url.rstrip('/')}/#session-{quote(session_id, safe='')}"


def _elapsed(start: datetime, end: datetime) -> timedelta:
    # Subtracting two datetimes of the same ZoneInfo ignores a DST change in between,
    # so go through UTC to get real elapsed time.
    return end.astimezone(UTC) - start.astimezone(UTC)


# --- export -------------------------------------------------------------------------------


def to_frab(
    event: Event,
    *,
    base_url: str,
    stages: Collection[str] | None = None,
    generator_version: str = "0.1",
) -> dict[str, Any]:
    """The event as a frab/pretalx ``schedule.json`` document (valid against the c3voc schema)."""
    shown = included_stages(event, stages)
    rooms = _room_names(shown)
    # Our session order is the file's order, which delays do not change: a stable integer id.
    number = {s.id: i for i, s in enumerate(event.sessions, start=1)}
    sessions = sorted((s for s in event.sessions if s.stage in rooms), key=lambda s: (s.start, s.stage, s.id))

    by_day: dict[date, list[Session]] = {}
    for session in sessions:
        by_day.setdefault(_day_of(event, session), []).append(session)
    if by_day:
        first, last = min(by_day), max(by_day)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    else:
        days = event.days()

    def frab_day(index: int, on: date) -> dict[str, Any]:
        todays = by_day.get(on, [])
        items = [
            _frab_event(event, s, room=rooms[s.stage], number=number[s.id], base_url=base_url) for s in todays
        ]
        return _day(event, index, on, todays, items)

    conference: dict[str, Any] = {
        "acronym": _acronym(event.id),
        "title": event.title.best("en"),
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
        "daysCount": len(days),
        "timeslot_duration": "00:05",
        "url": event.url or base_url,
        "rooms": [_room(event, stage, rooms[stage.id]) for stage in shown],
        "tracks": _tracks(sessions),
        "days": [frab_day(index, on) for index, on in enumerate(days, start=1)],
    }
    if event.theme.best("en"):
        conference["description"] = event.theme.best("en")
    # The schema's pattern refuses some IANA names (Etc/GMT-8, US/Pacific); leave those out
    # rather than write an invalid document: every date in it carries its offset anyway.
    if _ZONE_NAME.search(event.timezone.key):
        conference["time_zone_name"] = event.timezone.key
    # A version that changes whenever the program does (a delay, a new session), so that
    # consumers polling the export know when to reload.
    version = hashlib.sha256(json.dumps(conference, sort_keys=True).encode()).hexdigest()[:12]
    return {
        "$schema": SCHEMA_URL,
        "generator": {"name": "forumcast", "version": generator_version},
        "schedule": {"version": version, "base_url": base_url, "conference": conference},
    }


def _day_of(event: Event, session: Session) -> date:
    """A session belongs to the day it starts on in the event's zone, even if it runs past midnight."""
    return session.start.astimezone(event.timezone).date()


def _room_names(shown: list[Stage]) -> dict[str, str]:
    """Stage id -> room name; frab keys rooms by name, so names must be unique."""
    names: dict[str, str] = {}
    for stage in shown:
        name = stage.title.best("en") or stage.id
        names[stage.id] = f"{name} ({stage.id})" if name in names.values() else name
    return names


def _room(event: Event, stage: Stage, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "slug": _slug(stage.id, fallback=f"room-{event.stages.index(stage) + 1}"),
        "guid": str(uuid.uuid5(_GUIDS, f"{event.id}/stage/{stage.id}")),
        "type": _room_type(event, stage),
        "description": stage.description.to_json(),
    }


def _room_type(event: Event, stage: Stage) -> str:
    # The home venue is the main stage's; a stage elsewhere (Lyon) joins the forum online.
    home = next((s.venue for s in event.stages if s.kind is StageKind.MAIN), event.stages[0].venue)
    return "online" if stage.venue != home else _ROOM_TYPES[stage.kind]


def _tracks(sessions: list[Session]) -> list[dict[str, str]]:
    tracks: list[dict[str, str]] = []
    for name in dict.fromkeys(s.track for s in sessions if s.track):
        track = {"name": name}
        slug = _slug(name, fallback="")
        if slug:
            track["slug"] = slug
        tracks.append(track)
    return tracks


def _day(
    event: Event, index: int, day: date, sessions: list[Session], items: list[dict[str, Any]]
) -> dict[str, Any]:
    zone = event.timezone
    # The calendar day in the event's zone, stretched to the end of a session that runs
    # past midnight (it belongs to the day it starts on).
    start = datetime.combine(day, time(), zone)
    end = max([datetime.combine(day + timedelta(days=1), time(), zone), *(s.end for s in sessions)])
    rooms: dict[str, list[dict[str, Any]]] = {}
    for item in items:  # already sorted by start
        rooms.setdefault(item["room"], []).append(item)
    return {
        "index": index,
        "date": day.isoformat(),
        "day_start": start.isoformat(),
        "day_end": end.astimezone(zone).isoformat(),
        "rooms": rooms,
    }


def _frab_event(event: Event, session: Session, *, room: str, number: int, base_url: str) -> dict[str, Any]:
    stage = event.stage(session.stage)
    assert stage is not None, "validated at load time"
    zone = event.venue_of(stage).timezone
    start, end = session.start.astimezone(zone), session.end.astimezone(zone)
    title, abstract = session.title, session.abstract
    return {
        "guid": str(uuid.uuid5(_GUIDS, f"{event.id}/session/{session.id}")),
        "id": number,
        "date": start.isoformat(),
        "start": start.strftime("%H:%M"),
        "duration": _hhmm(_elapsed(start, end)),
        "end": end.isoformat(),
        "room": room,
        "slug": _slug(session.id, fallback=f"session-{number}"),
        "url": session_url(base_url, session.id),
        "title": title.en or title.zh,
        "subtitle": title.zh if title.en else "",
        "track": session.track or None,
        "type": session.type,
        "language": session.language or None,
        "abstract": abstract.en or abstract.zh,
        "description": abstract.zh if abstract.en else "",
        "persons": [_person(event, speaker) for speaker in session.speakers],
        "links": [],
        "do_not_stream": session.do_not_stream,
    }


def _person(event: Event, speaker: Speaker) -> dict[str, Any]:
    # pretalx style only: a frab-style person ({id, public_name}) would also match, and the
    # schema's oneOf refuses a person that matches both.
    code = uuid.uuid5(_GUIDS, f"{event.id}/speaker/{speaker.name}").hex[:8].upper()
    return {"code": code, "name": speaker.name, "biography": speaker.affiliation or None}


def _hhmm(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _slug(text: str, *, fallback: str) -> str:
    if _SLUG.fullmatch(text):
        return text
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug if _SLUG.fullmatch(slug) else fallback


def _acronym(event_id: str) -> str:
    if _ACRONYM.fullmatch(event_id):
        return event_id
    acronym = re.sub(r"[^a-z0-9_]", "_", event_id.lower())
    return acronym.ljust(4, "_")


# --- import -------------------------------------------------------------------------------


class _Reader:
    """Collects problems while reading a parsed document; never raises mid-way."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, path: str, reason: str) -> None:
        self.problems.append(Problem(self.file, path, reason))

    def mapping(self, node: Any, path: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(node, dict):
            self.problem(path, f"expected an object, got {type(node).__name__}")
            return {}
        for key in required:
            if key not in node:
                self.problem(f"{path}.{key}", "missing")
        return node

    def listing(self, node: Any, path: str) -> list[Any]:
        if node is None:
            return []
        if not isinstance(node, list):
            self.problem(path, f"expected a list, got {type(node).__name__}")
            return []
        return node

    def string(self, node: dict[str, Any], key: str, path: str, default: str = "") -> str:
        value = node.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.problem(f"{path}.{key}", f"expected text, got {type(value).__name__}")
            return default
        return str(value)

    def moment(self, node: dict[str, Any], key: str, path: str, zone: ZoneInfo | None) -> datetime | None:
        """An ISO date-time; a naive one is read in the conference zone, if there is one."""
        value = node.get(key)
        moment = None
        if isinstance(value, str):
            with suppress(ValueError):
                moment = datetime.fromisoformat(value)
        if moment is None:
            self.problem(f"{path}.{key}", f"not an ISO 8601 date-time: {value!r}")
            return None
        if moment.tzinfo is None:
            if zone is None:
                self.problem(
                    f"{path}.{key}",
                    f"naive date-time {value!r} and no conference time_zone_name to read it in",
                )
                return None
            return moment.replace(tzinfo=zone)
        return moment

    def day(self, node: dict[str, Any], path: str) -> date | None:
        value = node.get("date")
        if value is None:
            return None  # reported as missing
        if isinstance(value, str):
            with suppress(ValueError):
                return date.fromisoformat(value)
        self.problem(f"{path}.date", f"not an ISO 8601 date: {value!r}")
        return None


def parse_frab(document: Any, *, file: str) -> Event:
    """Build an event from a parsed frab/pretalx document, or raise ScheduleError listing every problem."""
    r = _Reader(file)
    if not isinstance(document, dict):
        raise ScheduleError([Problem(file, "$", f"expected a JSON object, got {type(document).__name__}")])
    at_conf = "schedule.conference"
    # An absent key is reported once, as missing, by its parent's required keys.
    if "schedule" not in document:
        r.problem("schedule", "missing")
    schedule = r.mapping(document["schedule"], "schedule", ("conference",)) if "schedule" in document else {}
    conf = (
        r.mapping(schedule["conference"], at_conf, ("acronym", "title", "days"))
        if "conference" in schedule
        else {}
    )

    zone: ZoneInfo | None = None
    zone_name = conf.get("time_zone_name")
    if zone_name is not None:
        try:
            zone = ZoneInfo(zone_name) if isinstance(zone_name, str) else None
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory: OSError
            zone = None
        if zone is None:
            r.problem(f"{at_conf}.time_zone_name", f"unknown IANA time zone {zone_name!r}")
    # Every session is kept in the one venue's zone; without a conference zone, in UTC.
    venue_zone = zone or ZoneInfo("UTC")

    stages: list[Stage] = []
    stage_paths: list[str] = []
    stage_of_room: dict[str, str] = {}

    def add_stage(name: str, slug: str, description: Text, path: str) -> str:
        stage_id = slug or _slug(name, fallback=f"room-{len(stages) + 1}")
        stages.append(Stage(stage_id, Text(en=name), StageKind.FORUM, _VENUE_ID, description=description))
        stage_paths.append(path)
        stage_of_room[name] = stage_id
        return stage_id

    for i, item in enumerate(r.listing(conf.get("rooms"), f"{at_conf}.rooms")):
        at = f"{at_conf}.rooms[{i}]"
        room = r.mapping(item, at, ("name",))
        if "name" in room:
            add_stage(r.string(room, "name", at), r.string(room, "slug", at), _description(r, room, at), at)

    sessions: list[Session] = []
    session_paths: list[str] = []
    for d, item in enumerate(r.listing(conf.get("days"), f"{at_conf}.days")):
        at_day = f"{at_conf}.days[{d}]"
        day = r.mapping(item, at_day, ("date", "rooms"))
        day_date = r.day(day, at_day)
        # frab days run past midnight (until "day_change"): a bare start of 01:00 on day
        # one is the next morning, which day_start tells us.
        day_start = r.moment(day, "day_start", at_day, zone) if "day_start" in day else None
        rooms = r.mapping(day["rooms"], f"{at_day}.rooms") if "rooms" in day else {}
        for name, events in rooms.items():
            at_room = f"{at_day}.rooms{_key(name)}"
            stage_id = stage_of_room.get(name) or add_stage(name, "", Text(), at_room)
            for j, node in enumerate(r.listing(events, at_room)):
                at = f"{at_room}[{j}]"
                session = _session(r, node, at, stage_id, day_date, day_start, zone, venue_zone)
                if session is not None:
                    sessions.append(session)
                    session_paths.append(at)

    event = Event(
        id=r.string(conf, "acronym", at_conf),
        title=Text(en=r.string(conf, "title", at_conf)),
        timezone=venue_zone,
        venues=(Venue(_VENUE_ID, Text(), venue_zone),),
        stages=tuple(stages),
        sessions=tuple(sessions),
        theme=Text(en=r.string(conf, "description", at_conf)),
        url=r.string(conf, "url", at_conf),
    )
    return check_event(
        event, file=file, earlier=r.problems, stage_paths=stage_paths, session_paths=session_paths
    )


def _session(
    r: _Reader,
    node: Any,
    at: str,
    stage_id: str,
    day_date: date | None,
    day_start: datetime | None,
    zone: ZoneInfo | None,
    venue_zone: ZoneInfo,
) -> Session | None:
    e = r.mapping(node, at, ("title",))
    if not isinstance(node, dict):
        return None
    session_id = r.string(e, "slug", at) or r.string(e, "guid", at) or r.string(e, "id", at)
    if not session_id:
        r.problem(f"{at}.slug", "missing: need slug, guid or id")

    start: datetime | None = None
    if "date" in e:
        start = r.moment(e, "date", at, zone)
    elif "start" in e:
        start = _clock(r, e, at, day_date, day_start, zone)
    else:
        r.problem(f"{at}.date", "missing: need date, or start with the day's date")

    end: datetime | None = None
    if "end" in e:
        end = r.moment(e, "end", at, zone)
    elif "duration" in e:
        length = _duration(r, e, at)
        end = add_absolute(start, length) if start is not None and length is not None else None
    else:
        r.problem(f"{at}.end", "missing: need end or duration")

    speakers = [
        _speaker(r, p, f"{at}.persons[{i}]")
        for i, p in enumerate(r.listing(e.get("persons"), f"{at}.persons"))
    ]
    title, subtitle = r.string(e, "title", at), r.string(e, "subtitle", at)
    abstract, description = r.string(e, "abstract", at), r.string(e, "description", at)
    if start is None or end is None or not session_id:
        return None
    return Session(
        id=session_id,
        stage=stage_id,
        title=Text(zh=subtitle if _CJK.search(subtitle) else "", en=title),
        start=start.astimezone(venue_zone),
        end=end.astimezone(venue_zone),
        speakers=tuple(s for s in speakers if s is not None),
        track=r.string(e, "track", at),
        type=r.string(e, "type", at, "talk"),
        language=r.string(e, "language", at),
        do_not_stream=_truthy(e.get("do_not_stream")),
        # pretalx's description is a longer English text; ours carries the Chinese abstract.
        abstract=Text(
            zh=description if _CJK.search(description) else "",
            en=abstract or ("" if _CJK.search(description) else description),
        ),
    )


def _clock(
    r: _Reader,
    e: dict[str, Any],
    at: str,
    day_date: date | None,
    day_start: datetime | None,
    zone: ZoneInfo | None,
) -> datetime | None:
    """A start from the day's date and an ``HH:MM`` wall-clock time in the conference zone."""
    value = e.get("start")
    match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        r.problem(f"{at}.start", f"not a time of day HH:MM: {value!r}")
        return None
    if zone is None:
        r.problem(f"{at}.start", "a start time without date needs the conference time_zone_name")
        return None
    if day_date is None:
        return None  # the day's own problem is reported
    hour, minute, second = (int(g or 0) for g in match.groups())
    moment = datetime.combine(day_date, time(hour, minute, second), zone)
    if day_start is not None and moment < day_start:
        moment = datetime.combine(day_date + timedelta(days=1), moment.time(), zone)
    return moment


def _duration(r: _Reader, e: dict[str, Any], at: str) -> timedelta | None:
    value = e.get("duration")
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        r.problem(f"{at}.duration", f"not a duration HH:MM: {value!r}")
        return None
    sign, hours, minutes, seconds = match.groups()
    # A negative duration is kept, so that validation reports "ends before it starts".
    length = timedelta(hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0))
    return -length if sign else length


def _speaker(r: _Reader, node: Any, at: str) -> Speaker | None:
    p = r.mapping(node, at)
    name = r.string(p, "name", at) or r.string(p, "public_name", at)  # pretalx, or frab
    if not name:
        r.problem(f"{at}.name", "missing: need name or public_name")
        return None
    return Speaker(name=name, affiliation=r.string(p, "biography", at))


def _description(r: _Reader, room: dict[str, Any], at: str) -> Text:
    value = room.get("description")
    if isinstance(value, dict):  # a translation object, as we export it
        return Text(
            zh=r.string(value, "zh", f"{at}.description"), en=r.string(value, "en", f"{at}.description")
        )
    return Text(en=r.string(room, "description", at))


def _truthy(value: Any) -> bool:
    # The schema allows a string here; frab writes booleans, some tools "true"/"false".
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0")
    return bool(value)


def _key(name: str) -> str:
    """A room name as a path step: ``.Main`` or ``["Main Hall"]``."""
    return f".{name}" if _PLAIN_KEY.fullmatch(name) else f"[{json.dumps(name, ensure_ascii=False)}]"


def load_frab_text(text: str, *, file: str) -> Event:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ScheduleError([Problem(file, where, f"not valid JSON: {exc.msg}")]) from None
    return parse_frab(document, file=file)


def load_frab(path: Path) -> Event:
    return load_frab_text(path.read_text(encoding="utf-8"), file=str(path))
