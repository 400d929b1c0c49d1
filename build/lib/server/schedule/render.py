"""The JSON shapes of the schedule API: sessions, stages and the event, in a chosen zone.

Pure functions: they take model values and a :class:`~zoneinfo.ZoneInfo` to render times in
(the viewer's zone, or the event's). Every time is ISO 8601 with its UTC offset; each
session also carries its venue's own wall-clock times, so a client can show "14:30 in Lyon
(21:30 your time)".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.schedule.model import Event, Session, Stage
from server.schedule.scheduler import StageStatus


def _iso(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat()


def session_json(session: Session, event: Event, zone: ZoneInfo) -> dict[str, Any]:
    stage = event.stage(session.stage)
    venue_zone = event.venue_of(stage).timezone if stage is not None else event.timezone
    return {
        "id": session.id,
        "stage": session.stage,
        "title": session.title.to_json(),
        "start": _iso(session.start, zone),
        "end": _iso(session.end, zone),
        "timezone": zone.key,
        "venue_start": _iso(session.start, venue_zone),
        "venue_end": _iso(session.end, venue_zone),
        "venue_timezone": venue_zone.key,
        "duration_minutes": int(session.duration.total_seconds() // 60),
        "speakers": [
            {"name": p.name, "remote": p.remote, "affiliation": p.affiliation, "country": p.country}
            for p in session.speakers
        ],
        "track": session.track,
        "type": session.type,
        "language": session.language,
        "do_not_stream": session.do_not_stream,
        "abstract": session.abstract.to_json(),
        # What automation puts on the program during the session (the stage's first input
        # when None), and where it fails over to.
        "input": session.input,
        "backup_input": session.backup_input,
    }


def stage_json(
    stage: Stage,
    status: StageStatus,
    event: Event,
    zone: ZoneInfo,
    *,
    delay_minutes: int = 0,
    with_inputs: bool = False,
) -> dict[str, Any]:
    venue = event.venue_of(stage)
    body: dict[str, Any] = {
        "id": stage.id,
        "title": stage.title.to_json(),
        "kind": stage.kind.value,
        "closed": stage.closed,
        "venue": {
            "id": venue.id,
            "name": venue.name.to_json(),
            "timezone": venue.timezone.key,
            "city": venue.city,
        },
        "state": status.state.value,
        "current": session_json(status.current, event, zone) if status.current else None,
        "next": session_json(status.next, event, zone) if status.next else None,
        "delay_minutes": delay_minutes,
    }
    if with_inputs:
        body["inputs"] = [{"id": i.id, "title": i.title, "kind": i.kind.value} for i in stage.inputs]
    return body


def event_json(event: Event, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    return {
        "id": event.id,
        "title": event.title.to_json(),
        "theme": event.theme.to_json(),
        "timezone": event.timezone.key,
        "url": event.url,
        "demo": event.demo,
        "start": _iso(event.start, zone),
        "end": _iso(event.end, zone),
        "days": [d.isoformat() for d in event.days()],
        "venues": [
            {"id": v.id, "name": v.name.to_json(), "timezone": v.timezone.key, "city": v.city}
            for v in event.venues
        ],
        "stage_count": len(event.stages),
        "session_count": len(event.sessions),
        "now": _iso(now, zone),
    }


#: The fields of a program's state that every viewer is told (the rest is for producers).
NOW_PROGRAM_FIELDS = ("source", "slate", "mode", "reason", "since")


def now_json(stage_id: str, status: StageStatus, event: Event, program: Mapping[str, Any]) -> dict[str, Any]:
    """The watch protocol's ``now`` event: the stage's state, its session and the next one in
    the event's zone, and what the program shows (``program`` is the program's state)."""
    zone = event.timezone
    return {
        "type": "now",
        "stage": stage_id,
        "state": status.state.value,
        "session": session_json(status.current, event, zone) if status.current else None,
        "next": session_json(status.next, event, zone) if status.next else None,
        "program": {k: program[k] for k in NOW_PROGRAM_FIELDS},
        "slate": program["slate"],
    }
