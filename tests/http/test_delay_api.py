"""Producer delays over HTTP: auth outcomes, validation, and the program everywhere after."""

from __future__ import annotations

from typing import Any

import icalendar
import jwt
import pytest
import redis

from server.clock import ManualClock
from server.http.keys import BUS
from tests.conftest import SECRET, Serve, at, auth
from tests.support.redis_server import RedisServer


def morning() -> ManualClock:
    return ManualClock(at("2020-12-06T09:30:00+08:00"))


def expired_token() -> dict[str, str]:
    token = jwt.encode(
        {"iss": "forumcast", "role": "producer", "scope": "*", "iat": 1, "exp": 2}, SECRET, "HS256"
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "auth.missing_token"),
        ({"Authorization": "Bearer not-a-jwt"}, 401, "auth.invalid_token"),
        ({"Authorization": "Token abc"}, 401, "auth.invalid_token"),
        ("expired", 401, "auth.expired_token"),
        ("ops", 403, "auth.forbidden"),
        ("viewer", 403, "auth.forbidden"),
        ("other-stage", 403, "auth.forbidden"),
    ],
)
async def test_delay_refused_without_the_right_token(
    serve: Serve, headers: Any, status: int, code: str
) -> None:
    named = {
        "expired": expired_token,
        "ops": lambda: auth("ops"),
        "viewer": lambda: auth("viewer:main"),
        "other-stage": lambda: auth("producer", "forum-a"),
    }
    client = await serve(clock=morning())
    before = await (await client.get("/api/v1/stages/main")).json()
    response = await client.post(
        "/api/v1/stages/main/delay",
        json={"minutes": 10},
        headers=named[headers]() if isinstance(headers, str) else headers,
    )
    assert response.status == status
    body = await response.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert await (await client.get("/api/v1/stages/main")).json() == before  # nothing changed


@pytest.mark.parametrize("token", [auth("producer", "main"), auth("producer")])
async def test_delay_moves_the_program_everywhere(serve: Serve, token: dict[str, str]) -> None:
    client = await serve(clock=morning())
    subscription = client.app[BUS].subscribe()
    response = await client.post("/api/v1/stages/main/delay", json={"minutes": 10}, headers=token)
    assert response.status == 200
    body = await response.json()
    assert body["delay_minutes"] == 10 and body["delay"]["minutes"] == 10
    assert [(s["id"], s["end"]) for s in body["sessions"]][:2] == [
        ("opening", "2020-12-06T10:10:00+08:00"),
        ("keynote", "2020-12-06T11:10:00+08:00"),
    ]
    event = subscription.get_nowait()
    assert event is not None and (event.type, event.stage, event.data["minutes"]) == (
        "stage.delayed",
        "main",
        10,
    )

    sessions = await (await client.get("/api/v1/sessions", params={"stage": "main"})).json()
    assert sessions["sessions"][2]["start"] == "2020-12-06T14:10:00+08:00"
    stages = await (await client.get("/api/v1/stages")).json()
    assert next(s for s in stages["stages"] if s["id"] == "main")["delay_minutes"] == 10
    frab = await (await client.get("/api/v1/schedule.json")).json()
    days = frab["schedule"]["conference"]["days"]
    keynote = next(e for d in days for r in d["rooms"].values() for e in r if e["slug"] == "keynote")
    assert keynote["date"] == "2020-12-06T10:10:00+08:00"
    ics = icalendar.Calendar.from_ical(await (await client.get("/api/v1/schedule.ics")).read())
    afternoon = next(e for e in ics.walk("VEVENT") if str(e["SUMMARY"]).startswith("Afternoon"))
    assert afternoon.decoded("DTSTART") == at("2020-12-06T14:10:00+08:00")
    text = await (await client.get("/metrics")).text()
    assert 'forumcast_schedule_delays_total{stage="main"} 1.0' in text


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "request.bad_json"),
        (b"[1, 2]", 400, "schedule.bad_delay"),
        (b'{"mins": 5}', 400, "schedule.bad_delay"),
        (b'{"minutes": "ten"}', 400, "schedule.bad_delay"),
        (b'{"minutes": 0}', 400, "schedule.bad_delay"),
        (b'{"minutes": -45}', 409, "schedule.delay_conflict"),
    ],
)
async def test_bad_delay_requests(serve: Serve, body: bytes, status: int, code: str) -> None:
    client = await serve(clock=morning())
    headers = {**auth("producer", "main"), "Content-Type": "application/json"}
    response = await client.post("/api/v1/stages/main/delay", data=body, headers=headers)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code
    ok = await client.post("/api/v1/stages/main/delay", json={"minutes": 5}, headers=headers)
    assert ok.status == 200 and (await ok.json())["delay_minutes"] == 5  # and nothing else broke


async def test_unknown_stage_is_404_for_a_producer(serve: Serve) -> None:
    client = await serve(clock=morning())
    response = await client.post(
        "/api/v1/stages/nowhere/delay", json={"minutes": 5}, headers=auth("producer")
    )
    assert response.status == 404 and (await response.json())["error"]["code"] == "schedule.unknown_stage"
    anonymous = await client.post("/api/v1/stages/nowhere/delay", json={"minutes": 5})
    assert anonymous.status == 404


async def test_delays_persist_in_redis_across_instances(serve: Serve, redis_server: RedisServer) -> None:
    config = {"redis_url": redis_server.url}
    redis.Redis.from_url(redis_server.url).flushdb()
    first = await serve(clock=morning(), **config)
    response = await first.post("/api/v1/stages/main/delay", json={"minutes": 15}, headers=auth("producer"))
    assert response.status == 200
    await first.close()
    # A new instance on the same Redis replays the delay at start-up.
    second = await serve(clock=ManualClock(at("2020-12-06T09:40:00+08:00")), **config)
    body = await (await second.get("/api/v1/stages/main")).json()
    assert body["delay_minutes"] == 15 and body["sessions"][0]["end"] == "2020-12-06T10:15:00+08:00"
    await second.post("/api/v1/stages/main/delay", json={"minutes": -5}, headers=auth("producer"))
    await second.close()
    third = await serve(clock=ManualClock(at("2020-12-06T09:45:00+08:00")), **config)
    body = await (await third.get("/api/v1/stages/main")).json()
    assert body["delay_minutes"] == 10 and body["sessions"][1]["start"] == "2020-12-06T10:10:00+08:00"
