"""The schedule REST API: event, stages, sessions, frab JSON and iCal exports, producer delays.

Closed-door stages are listed (so the program is complete) but their sessions appear only to
requests whose token covers that stage; the public exports never contain them.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from server import audit
from server.auth import Principal
from server.errors import ForumcastError
from server.http.access import optional_principal, require_producer, visible_stages
from server.http.bodies import read_object, shown
from server.http.keys import CLOCK, CONFIG, LIVE, METRICS, SCHEDULE, SCHEDULER
from server.schedule import frab_export, ical
from server.schedule.model import Event, Stage
from server.schedule.render import event_json, session_json, stage_json
from server.schedule.scheduler import StageStatus

routes = web.RouteTableDef()


def _zone(request: web.Request, event: Event) -> ZoneInfo:
    name = request.query.get("tz")
    if not name:
        return event.timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Europe' is a directory
        raise ForumcastError(
            "schedule.unknown_timezone", f"unknown time zone {name!r}: use an IANA name like Europe/Paris"
        ) from None


def _stage(request: web.Request) -> Stage:
    stage_id = request.match_info["stage"]
    stage = request.app[SCHEDULE].event.stage(stage_id)
    if stage is None:
        raise ForumcastError("schedule.unknown_stage", f"no stage {stage_id!r}")
    return stage


def _visible(who: Principal | None, event: Event) -> set[str]:
    return visible_stages(who, ((s.id, s.closed) for s in event.stages))


def _base_url(request: web.Request) -> str:
    configured = request.app[CONFIG].public_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


def _stage_body(
    request: web.Request, stage: Stage, zone: ZoneInfo, *, visible: set[str], with_inputs: bool
) -> dict[str, Any]:
    schedule = request.app[SCHEDULE]
    status = request.app[SCHEDULER].status(stage.id)
    if stage.id not in visible:
        # Closed and not invited: the stage is listed, what runs on it is not.
        status = StageStatus(status.state)
    body = stage_json(
        stage,
        status,
        schedule.event,
        zone,
        delay_minutes=schedule.delay_totals.get(stage.id, 0),
        with_inputs=with_inputs,
    )
    if stage.id not in visible:
        # Not even whether it is on now, or running late.
        body["state"], body["delay_minutes"] = "closed", None
    elif LIVE in request.app:
        body["program"] = request.app[LIVE].program_state(stage.id)
    return body


@routes.get("/api/v1/event")
async def get_event(request: web.Request) -> web.Response:
    event = request.app[SCHEDULE].event
    visible = _visible(optional_principal(request), event)
    body = event_json(event, _zone(request, event), request.app[CLOCK].now())
    body["session_count"] = sum(1 for s in event.sessions if s.stage in visible)
    return web.json_response(body)


@routes.get("/api/v1/stages")
async def list_stages(request: web.Request) -> web.Response:
    event = request.app[SCHEDULE].event
    zone = _zone(request, event)
    visible = _visible(optional_principal(request), event)
    stages = [_stage_body(request, s, zone, visible=visible, with_inputs=False) for s in event.stages]
    return web.json_response({"timezone": zone.key, "stages": stages})


@routes.get("/api/v1/stages/{stage}")
async def get_stage(request: web.Request) -> web.Response:
    event = request.app[SCHEDULE].event
    stage = _stage(request)
    zone = _zone(request, event)
    who = optional_principal(request)
    visible = _visible(who, event)
    with_inputs = who is not None and who.can_produce(stage.id)
    body = _stage_body(request, stage, zone, visible=visible, with_inputs=with_inputs)
    shown = stage.id in visible
    body["sessions"] = [session_json(s, event, zone) for s in event.sessions_of(stage.id)] if shown else []
    return web.json_response(body)


def _day_filter(value: str, event: Event, zone: ZoneInfo) -> date:
    days = event.days()
    # ASCII digits, and few of them: int() of '²' or of 5 000 digits raises.
    if value.isascii() and value.isdigit() and len(value) <= 3 and 1 <= int(value) <= len(days):
        return days[int(value) - 1]
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ForumcastError(
            "schedule.bad_day",
            f"day must be 1..{len(days)} or a date like {days[0].isoformat()}, got {shown(value)}",
        ) from None


@routes.get("/api/v1/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    event = request.app[SCHEDULE].event
    zone = _zone(request, event)
    visible = _visible(optional_principal(request), event)
    stage_filter = request.query.get("stage")
    if stage_filter is not None and event.stage(stage_filter) is None:
        raise ForumcastError("schedule.unknown_stage", f"no stage {stage_filter!r}")
    day = _day_filter(request.query["day"], event, zone) if "day" in request.query else None
    sessions = [
        s
        for s in sorted(event.sessions, key=lambda s: (s.start, s.stage))
        if s.stage in visible
        and (stage_filter is None or s.stage == stage_filter)
        and (day is None or s.start.astimezone(zone).date() == day)
    ]
    return web.json_response(
        {
            "timezone": zone.key,
            "count": len(sessions),
            "sessions": [session_json(s, event, zone) for s in sessions],
        }
    )


@routes.get("/api/v1/schedule.json")
async def schedule_json(request: web.Request) -> web.Response:
    event = request.app[SCHEDULE].event
    body = frab_export.to_frab(
        event, base_url=_base_url(request), stages=_visible(optional_principal(request), event)
    )
    return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@routes.get("/api/v1/schedule.ics")
async def schedule_ics(request: web.Request) -> web.Response:
    event = request.app[SCHEDULE].event
    body = ical.to_ical(
        event,
        base_url=_base_url(request),
        stages=_visible(optional_principal(request), event),
        stamp=request.app[CLOCK].now(),
    )
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{event.id}.ics"'},
    )


@routes.post("/api/v1/stages/{stage}/delay")
async def delay_stage(request: web.Request) -> web.Response:
    stage = _stage(request)  # stages are public: an unknown one is a 404 whoever asks
    who = require_producer(request, stage.id)
    payload = await read_object(request, code="schedule.bad_delay", example='{"minutes": 10}')
    if "minutes" not in payload:
        raise ForumcastError("schedule.bad_delay", "the body must be a JSON object with 'minutes'")
    schedule = request.app[SCHEDULE]
    delay = await schedule.delay(
        stage.id, payload["minutes"], at=request.app[CLOCK].now(), by=who.subject or who.role
    )
    request.app[METRICS].schedule_delays.labels(stage=stage.id).inc()
    await audit.record(request, who, "schedule.delay", f"stage:{stage.id}", minutes=delay.minutes)
    zone = _zone(request, schedule.event)
    body = _stage_body(request, stage, zone, visible=_visible(who, schedule.event), with_inputs=False)
    body["delay"] = delay.to_json()
    body["sessions"] = [session_json(s, schedule.event, zone) for s in schedule.event.sessions_of(stage.id)]
    return web.json_response(body)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
