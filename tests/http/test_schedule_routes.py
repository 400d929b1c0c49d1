"""The schedule REST API on a real loopback server (server/http/schedule_routes.py)."""

from __future__ import annotations

import icalendar
import pytest

from server.clock import ManualClock
from tests.conftest import Serve, at, auth, frab_validator


def morning() -> ManualClock:
    return ManualClock(at("2020-12-06T10:15:00+08:00"))


async def test_event_and_stages_live_now(serve: Serve) -> None:
    client = await serve(clock=morning())
    event = await (await client.get("/api/v1/event")).json()
    assert event["id"] == "testcon" and event["timezone"] == "Asia/Shanghai"
    assert event["days"] == ["2020-12-06", "2020-12-07", "2020-12-08"]  # Lyon ends 00:30 on the 8th
    assert event["now"] == "2020-12-06T10:15:00+08:00"
    body = await (await client.get("/api/v1/stages")).json()
    stages = {s["id"]: s for s in body["stages"]}
    assert [s["id"] for s in body["stages"]] == ["main", "forum-a", "closed", "europe"]
    assert stages["main"]["state"] == "live" and stages["main"]["current"]["id"] == "keynote"
    assert stages["main"]["next"]["id"] == "afternoon"
    assert stages["forum-a"]["current"]["id"] == "forum-talk"
    assert stages["europe"]["state"] == "idle" and stages["europe"]["venue"]["timezone"] == "Europe/Paris"
    # A closed-door stage is listed, but not what runs on it, whether it runs, or late.
    closed = stages["closed"]
    assert closed["closed"] is True and closed["current"] is None and closed["next"] is None
    assert closed["state"] == "closed" and closed["delay_minutes"] is None and "program" not in closed
    invited = await (await client.get("/api/v1/stages", headers=auth("viewer:closed"))).json()
    assert {s["id"]: s for s in invited["stages"]}["closed"]["state"] == "live"
    everyone = await (await client.get("/api/v1/event")).json()
    insider = await (await client.get("/api/v1/event", headers=auth("viewer:closed"))).json()
    assert insider["session_count"] == everyone["session_count"] + 1  # the closed stage's one session
    assert "inputs" not in stages["main"]


async def test_stage_detail_shows_inputs_to_its_producer_only(serve: Serve) -> None:
    client = await serve(clock=morning())
    public = await (await client.get("/api/v1/stages/main")).json()
    assert "inputs" not in public and [s["id"] for s in public["sessions"]][:2] == ["opening", "keynote"]
    producer = await (await client.get("/api/v1/stages/main", headers=auth("producer", "main"))).json()
    assert [i["id"] for i in producer["inputs"]] == ["main-cam", "stern-uk"]
    closed = await (await client.get("/api/v1/stages/closed")).json()
    assert closed["sessions"] == [] and closed["current"] is None
    invited = await (await client.get("/api/v1/stages/closed", headers=auth("viewer:closed"))).json()
    assert [s["id"] for s in invited["sessions"]] == ["secret"] and invited["current"]["id"] == "secret"
    missing = await client.get("/api/v1/stages/nowhere")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "schedule.unknown_stage"


async def test_lyon_session_in_paris_and_shanghai_time(serve: Serve) -> None:
    client = await serve(clock=morning())
    paris = await (
        await client.get("/api/v1/sessions", params={"stage": "europe", "tz": "Europe/Paris"})
    ).json()
    (lyon,) = paris["sessions"]
    assert (lyon["start"], lyon["end"], lyon["timezone"]) == (
        "2020-12-07T14:30:00+01:00",
        "2020-12-07T17:30:00+01:00",
        "Europe/Paris",
    )
    shanghai = await (await client.get("/api/v1/sessions", params={"stage": "europe"})).json()
    (lyon,) = shanghai["sessions"]
    # Crosses midnight in Shanghai; the venue's own times are always included.
    assert (lyon["start"], lyon["end"]) == ("2020-12-07T21:30:00+08:00", "2020-12-08T00:30:00+08:00")
    assert (lyon["venue_start"], lyon["venue_timezone"]) == ("2020-12-07T14:30:00+01:00", "Europe/Paris")
    ny = await (
        await client.get("/api/v1/sessions", params={"stage": "europe", "tz": "America/New_York"})
    ).json()
    assert ny["sessions"][0]["start"] == "2020-12-07T08:30:00-05:00"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"day": "2020-12-07"}, ["day-two", "lyon"]),
        ({"day": "2"}, ["day-two", "lyon"]),
        ({"day": "2020-12-08"}, []),
        ({"day": "2020-12-07", "tz": "Europe/Paris"}, ["day-two", "lyon"]),  # 02:00 in Paris
        ({"day": "2020-12-07", "tz": "America/Los_Angeles"}, ["lyon"]),  # day-two is the 6th there
        ({"stage": "main", "day": "1"}, ["opening", "keynote", "afternoon"]),
    ],
)
async def test_session_filters(serve: Serve, params: dict[str, str], expected: list[str]) -> None:
    client = await serve(clock=morning())
    body = await (await client.get("/api/v1/sessions", params=params)).json()
    assert [s["id"] for s in body["sessions"]] == expected and body["count"] == len(expected)


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"tz": "Mars/Olympus"}, 400, "schedule.unknown_timezone"),
        ({"tz": "Europe"}, 400, "schedule.unknown_timezone"),
        ({"tz": "../../etc/passwd"}, 400, "schedule.unknown_timezone"),
        ({"day": "monday"}, 400, "schedule.bad_day"),
        ({"day": "9"}, 400, "schedule.bad_day"),
        ({"stage": "nowhere"}, 404, "schedule.unknown_stage"),
    ],
)
async def test_session_filter_errors(serve: Serve, params: dict[str, str], status: int, code: str) -> None:
    client = await serve(clock=morning())
    response = await client.get("/api/v1/sessions", params=params)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code
    assert (await client.get("/api/v1/sessions")).status == 200  # and nothing else broke


async def test_closed_sessions_only_with_an_invite(serve: Serve) -> None:
    client = await serve(clock=morning())
    public = await (await client.get("/api/v1/sessions")).json()
    assert "secret" not in {s["id"] for s in public["sessions"]} and public["count"] == 6
    invited = await (await client.get("/api/v1/sessions", headers=auth("viewer:closed"))).json()
    assert "secret" in {s["id"] for s in invited["sessions"]}
    other = await (await client.get("/api/v1/sessions", headers=auth("viewer:main"))).json()
    assert "secret" not in {s["id"] for s in other["sessions"]}
    bad = await client.get("/api/v1/sessions", headers={"Authorization": "Bearer nonsense"})
    assert bad.status == 401


async def test_frab_export_validates_and_hides_closed_stages(serve: Serve) -> None:
    client = await serve(clock=morning())
    response = await client.get("/api/v1/schedule.json")
    assert response.status == 200 and response.content_type == "application/json"
    document = await response.json()
    validator = frab_validator()
    errors = sorted(validator.iter_errors(document), key=str)
    assert errors == []
    slugs = [
        e["slug"] for d in document["schedule"]["conference"]["days"] for r in d["rooms"].values() for e in r
    ]
    assert sorted(slugs) == sorted(["opening", "keynote", "afternoon", "day-two", "forum-talk", "lyon"])
    invited = await (await client.get("/api/v1/schedule.json", headers=auth("viewer:closed"))).json()
    assert not list(validator.iter_errors(invited))
    slugs = [
        e["slug"] for d in invited["schedule"]["conference"]["days"] for r in d["rooms"].values() for e in r
    ]
    assert "secret" in slugs


async def test_ical_export_one_event_per_public_session(serve: Serve) -> None:
    client = await serve(clock=morning())
    response = await client.get("/api/v1/schedule.ics")
    assert response.status == 200 and response.content_type == "text/calendar"
    calendar = icalendar.Calendar.from_ical(await response.read())
    events = [c for c in calendar.walk("VEVENT")]
    assert len(events) == 6
    zones = {str(c["TZID"]) for c in calendar.walk("VTIMEZONE")}
    assert {"Asia/Shanghai", "Europe/Paris"} <= zones
    lyon = next(e for e in events if "Lyon" in str(e["SUMMARY"]))
    assert lyon.decoded("DTSTART") == at("2020-12-07T14:30:00+01:00")
    assert str(lyon.decoded("DTSTART").tzinfo) == "Europe/Paris"


async def test_unknown_route_and_method_are_json_errors(serve: Serve) -> None:
    client = await serve()
    missing = await client.get("/api/v1/nothing")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "request.not_found"
    wrong = await client.delete("/api/v1/stages")
    assert wrong.status == 405 and (await wrong.json())["error"]["code"] == "request.method_not_allowed"
