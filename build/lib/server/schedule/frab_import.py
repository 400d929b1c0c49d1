"""Importing a frab / pretalx ``schedule.json`` document as an :class:`Event`.

:func:`parse_frab`, :func:`load_frab_text` and :func:`load_frab` read the document that
pretalx and frab publish (the c3voc schedule schema's
``schedule.conference.days[].rooms{name: [events]}``). Like the YAML loader they collect
every problem with a JSON-path-like location (``schedule.conference.days[1].
rooms.Main[0].date``) and let :func:`~server.schedule.validate.check_event` add the
cross-reference ones, all reported in one :class:`~server.errors.ScheduleError`.

frab has no notion of venues or stage kinds: an imported event has one venue in the
conference time zone and every room becomes a forum stage. Writing such a document is
:mod:`server.schedule.frab_export`.
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from server.errors import Problem, ScheduleError
from server.schedule.frab_export import to_slug
from server.schedule.model import Event, Session, Speaker, Stage, StageKind, Text, Venue, add_absolute
from server.schedule.reader import DocumentReader
from server.schedule.validate import check_event

_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
_DURATION = re.compile(r"(-?)([0-9]+):([0-5][0-9])(?::([0-5][0-9]))?")
_CJK = re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_VENUE_ID = "venue"


class _FrabReader(DocumentReader):
    """A :class:`DocumentReader` for JSON (objects, nulls as absent) with frab's dates."""

    mapping_noun = "an object"
    null_is_absent = True

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
    r = _FrabReader(file)
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

    # No time_zone_name is no problem, unless a naive date-time or a bare start needs one.
    zone = r.zone(conf, "time_zone_name", at_conf) if conf.get("time_zone_name") is not None else None
    # Every session is kept in the one venue's zone; without a conference zone, in UTC.
    venue_zone = zone or ZoneInfo("UTC")

    stages: list[Stage] = []
    stage_paths: list[str] = []
    stage_of_room: dict[str, str] = {}

    def add_stage(name: str, slug: str, description: Text, path: str) -> str:
        stage_id = slug or to_slug(name, fallback=f"room-{len(stages) + 1}")
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
    r: _FrabReader,
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

    speakers = r.items(e.get("persons"), f"{at}.persons", lambda p, at_p: _speaker(r, p, at_p))
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
        speakers=tuple(speakers),
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
    r: _FrabReader,
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


def _duration(r: _FrabReader, e: dict[str, Any], at: str) -> timedelta | None:
    value = e.get("duration")
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        r.problem(f"{at}.duration", f"not a duration HH:MM: {value!r}")
        return None
    sign, hours, minutes, seconds = match.groups()
    # A negative duration is kept, so that validation reports "ends before it starts".
    length = timedelta(hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0))
    return -length if sign else length


def _speaker(r: _FrabReader, node: Any, at: str) -> Speaker | None:
    p = r.mapping(node, at)
    name = r.string(p, "name", at) or r.string(p, "public_name", at)  # pretalx, or frab
    if not name:
        r.problem(f"{at}.name", "missing: need name or public_name")
        return None
    return Speaker(name=name, affiliation=r.string(p, "biography", at))


def _description(r: _FrabReader, room: dict[str, Any], at: str) -> Text:
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
