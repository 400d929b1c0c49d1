"""Exporting an event as a frab / pretalx ``schedule.json`` document.

:func:`to_frab` writes the document that pretalx and frab publish and that the c3voc
schedule schema describes (``schedule.conference.days[].rooms{name: [events]}``), so that
players, recording and subtitle tools of that ecosystem can read our program. Only public
stages are exported unless the caller names the stages to include.

It also owns what other modules share with it: which stages an export shows
(:func:`included_stages`) and a session's public link (:func:`session_url`), both used by
the iCalendar export, and the schema's slug rule (:func:`to_slug`), which the frab import
applies to room names so that a round trip keeps the stage ids. Reading such a document
is :mod:`server.schedule.frab_import`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from server.schedule.model import Event, Session, Speaker, Stage, StageKind

SCHEMA_URL = "https://c3voc.de/schedule/schema.json"

# All generated guids live under one namespace, so the same event, stage and session ids
# always give the same guids and consumers can follow a session across exports.
_GUIDS = uuid.uuid5(uuid.NAMESPACE_DNS, "schedule.forumcast")

# Patterns of the c3voc schema that our ids and zone names do not always satisfy.
_SLUG = re.compile(r"[a-z0-9_-]+[a-z0-9]")
_ACRONYM = re.compile(r"[a-z0-9_-][a-z0-9_]{3,}(-2[0-9]{3}-[a-z]+)?")
# Used with search(), as JSON Schema does: the alternation leaves each branch half-anchored.
_ZONE_NAME = re.compile(r"^([A-Z][a-z]+/[A-Z][a-z]+)|UTC$")
_ROOM_TYPES = {
    StageKind.MAIN: "stage",
    StageKind.FORUM: "lecturehall",
    StageKind.CLOSED_DOOR: "lecturehall",
    StageKind.SIDE: "other",
}


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
        "slug": to_slug(stage.id, fallback=f"room-{event.stages.index(stage) + 1}"),
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
        slug = to_slug(name, fallback="")
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
        "slug": to_slug(session.id, fallback=f"session-{number}"),
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


def _elapsed(start: datetime, end: datetime) -> timedelta:
    # Subtracting two datetimes of the same ZoneInfo ignores a DST change in between,
    # so go through UTC to get real elapsed time.
    return end.astimezone(UTC) - start.astimezone(UTC)


def _hhmm(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def to_slug(text: str, *, fallback: str) -> str:
    """``text`` as a slug the c3voc schema accepts (``Hall A`` -> ``hall-a``), else ``fallback``."""
    if _SLUG.fullmatch(text):
        return text
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug if _SLUG.fullmatch(slug) else fallback


def _acronym(event_id: str) -> str:
    if _ACRONYM.fullmatch(event_id):
        return event_id
    acronym = re.sub(r"[^a-z0-9_]", "_", event_id.lower())
    return acronym.ljust(4, "_")
