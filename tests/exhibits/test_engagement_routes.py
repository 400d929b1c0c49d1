"""Visits and meeting requests over real HTTP, on the memory store and on a real Redis."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from exhibits.engagement_routes import MEETINGS_PER_CLIENT, VISITOR_IDS_PER_CLIENT
from server.clock import ManualClock
from tests.conftest import Serve, at, auth
from tests.support.metrics_text import value

NOW = at("2020-12-06T09:30:00+08:00")
HYDROGEN, SOLAR = "cn-hydrogen-01", "de-solar-01"
SLOTS = ["2020-12-07T15:00:00+08:00", "2020-12-07T16:30:00+08:00", "2020-12-08T10:00:00+01:00"]
Client = TestClient[Any, Any]
JSON = {"Content-Type": "application/json"}
ANN = "visitor-ann-0001"  # a meeting request's optional visitor field is only checked for its shape


def form(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Li Wei",
        "organisation": "Shenzhen Green Capital",
        "email": "li.wei@green-capital.example.cn",
        "message": "We would like to discuss a pilot in Qianhai.",
        "slots": SLOTS,
    } | changes


async def start(serve: Serve, settings: dict[str, Any] | None = None) -> tuple[Client, ManualClock]:
    clock = ManualClock(NOW)
    return await serve(clock=clock, **(settings or {})), clock


async def error_of(response: Any) -> tuple[int, str]:
    body = await response.json()
    return response.status, body["error"]["code"]


async def metric(client: Client, name: str, exhibit: str) -> float | None:
    text = await (await client.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == {"exhibit": exhibit}:
                return sample.value
    return None


async def submit(client: Client, exhibit: str = HYDROGEN, **changes: Any) -> dict[str, Any]:
    response = await client.post(f"/api/v1/exhibits/{exhibit}/meeting-requests", json=form(**changes))
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def new_visitor(client: Client) -> str:
    response = await client.post("/api/v1/visitors")
    assert response.status == 201, await response.text()
    visitor: str = (await response.json())["visitor"]
    return visitor


# -- visits ---------------------------------------------------------------------------------


async def test_seven_views_by_three_visitors(serve: Serve, store_settings: dict[str, Any]) -> None:
    client, _ = await start(serve, store_settings)
    ann, bob, cy = [await new_visitor(client) for _ in range(3)]
    for visitor in (ann, bob, ann, cy, ann, bob, cy):
        response = await client.post(
            f"/api/v1/exhibits/{HYDROGEN}/views", json={"visitor": visitor, "kind": "detail"}
        )
        assert response.status == 204 and await response.read() == b""
    for visitor in (bob, bob):
        response = await client.post(
            f"/api/v1/exhibits/{HYDROGEN}/views", json={"visitor": visitor, "kind": "model"}
        )
        assert response.status == 204
    await client.post(f"/api/v1/exhibits/{SOLAR}/views", json={"visitor": ann, "kind": "model"})

    stats = await client.get(f"/api/v1/exhibits/{HYDROGEN}/stats", headers=auth(f"exhibitor:{HYDROGEN}"))
    assert stats.status == 200
    assert await stats.json() == {
        "exhibit": HYDROGEN,
        "detail_views": 7,
        "detail_visitors": 3,
        "model_loads": 2,
        "model_visitors": 1,
        "meeting_requests": {"pending": 0, "accepted": 0, "declined": 0},
    }
    assert await metric(client, "forumcast_exhibit_views_total", HYDROGEN) == 7
    assert await metric(client, "forumcast_exhibit_model_loads_total", HYDROGEN) == 2
    assert await metric(client, "forumcast_exhibit_model_loads_total", SOLAR) == 1
    assert await metric(client, "forumcast_exhibit_views_total", SOLAR) is None


async def test_bad_views(serve: Serve) -> None:
    client, _ = await start(serve)
    url = f"/api/v1/exhibits/{HYDROGEN}/views"
    ann = await new_visitor(client)
    unknown = await client.post("/api/v1/exhibits/nowhere-01/views", json={"visitor": ann, "kind": "detail"})
    assert await error_of(unknown) == (404, "exhibit.unknown")
    assert await error_of(await client.post(url, data=b"{visitor", headers=JSON)) == (400, "request.bad_json")
    assert await error_of(await client.post(url, data=b"", headers=JSON)) == (400, "request.bad_json")
    big = json.dumps({"visitor": ann, "kind": "detail", "pad": "x" * 2000})
    assert await error_of(await client.post(url, data=big, headers=JSON)) == (413, "request.too_large")
    # What a cross-site form or beacon can send without a preflight is refused.
    plain = json.dumps({"visitor": ann, "kind": "detail"})
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        refused = await client.post(url, data=plain, headers={"Content-Type": content_type})
        assert await error_of(refused) == (415, "request.unsupported_media_type")
    invalid = await client.post(url, json={"visitor": "me", "kind": "click"})
    assert invalid.status == 422
    assert (await invalid.json())["error"]["details"] == [
        {"field": "visitor", "reason": "must be 8 to 64 characters of A-Z, a-z, 0-9, - and _"},
        {"field": "kind", "reason": "must be one of detail, model"},
    ]
    # Nothing was counted by any of them.
    stats = await client.get(f"/api/v1/exhibits/{HYDROGEN}/stats", headers=auth("ops"))
    assert (await stats.json())["detail_views"] == 0
    assert await metric(client, "forumcast_exhibit_views_total", HYDROGEN) is None


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/exhibits/{id}/stats", "GET"),
        ("/api/v1/exhibits/{id}/meeting-requests", "GET"),
        ("/api/v1/exhibits/{id}/meeting-requests/0123456789abcdef/accept", "POST"),
        ("/api/v1/exhibits/{id}/meeting-requests/0123456789abcdef/decline", "POST"),
    ],
)
async def test_exhibitor_routes_need_that_exhibits_token(serve: Serve, path: str, method: str) -> None:
    client, _ = await start(serve)
    url = path.format(id=HYDROGEN)
    cases = [
        ({}, (401, "auth.missing_token")),
        ({"Authorization": "Bearer nonsense"}, (401, "auth.invalid_token")),
        (auth(f"exhibitor:{SOLAR}"), (403, "auth.forbidden")),
        (auth("viewer:main"), (403, "auth.forbidden")),
        (auth("producer"), (403, "auth.forbidden")),
    ]
    for headers, expected in cases:
        assert await error_of(await client.request(method, url, headers=headers, json={})) == expected
    # An unknown exhibit is a 404 whoever asks: the catalog is public.
    missing = path.format(id="nowhere-01")
    assert await error_of(await client.request(method, missing, json={})) == (404, "exhibit.unknown")


# -- meeting requests -----------------------------------------------------------------------


async def test_request_accept_and_the_requesters_view(serve: Serve, store_settings: dict[str, Any]) -> None:
    client, _ = await start(serve, store_settings)
    created = await submit(client, visitor=ANN)
    assert set(created) == {"id", "status", "status_url", "status_page"} and created["status"] == "pending"
    assert created["status_page"] == "/hall#request=" + created["status_url"].rsplit("/", 1)[1]
    assert created["status_url"].startswith("/api/v1/meeting-requests/")
    link = await client.get(created["status_url"])
    assert link.headers["Cache-Control"] == "no-store"
    assert await link.json() == {
        "id": created["id"],
        "exhibit": HYDROGEN,
        "exhibit_title": "Fuel-cell stack for heavy trucks",
        "status": "pending",
        "slots": SLOTS,
        "accepted_slot": None,
        "decline_reason": None,
        "created": "2020-12-06T01:30:00+00:00",
    }

    owner = auth(f"exhibitor:{HYDROGEN}")
    listed = await (await client.get(f"/api/v1/exhibits/{HYDROGEN}/meeting-requests", headers=owner)).json()
    assert listed["count"] == 1
    assert listed["meeting_requests"][0] | {"created": "-"} == {
        "id": created["id"],
        "exhibit": HYDROGEN,
        "name": "Li Wei",
        "organisation": "Shenzhen Green Capital",
        "email": "li.wei@green-capital.example.cn",
        "message": "We would like to discuss a pilot in Qianhai.",
        "slots": SLOTS,
        "visitor": ANN,
        "status": "pending",
        "created": "-",
        "accepted_slot": None,
        "decline_reason": None,
        "decided": None,
    }

    base = f"/api/v1/exhibits/{HYDROGEN}/meeting-requests/{created['id']}"
    wrong = await client.post(f"{base}/accept", json={"slot": "2020-12-07T17:00:00+08:00"}, headers=owner)
    assert await error_of(wrong) == (422, "meeting.invalid")
    # The exhibitor names the slot in UTC; the requester sees it as they proposed it.
    accepted = await client.post(f"{base}/accept", json={"slot": "2020-12-07T08:30:00Z"}, headers=owner)
    assert accepted.status == 200
    body = await accepted.json()
    assert (body["status"], body["accepted_slot"]) == ("accepted", SLOTS[1])
    view = await (await client.get(created["status_url"])).json()
    assert (view["status"], view["accepted_slot"], view["decline_reason"]) == ("accepted", SLOTS[1], None)

    again = await client.post(f"{base}/accept", json={"slot": SLOTS[0]}, headers=owner)
    assert await error_of(again) == (409, "meeting.already_decided")
    assert await error_of(await client.post(f"{base}/decline", headers=owner)) == (
        409,
        "meeting.already_decided",
    )
    stats = await (await client.get(f"/api/v1/exhibits/{HYDROGEN}/stats", headers=auth("ops"))).json()
    assert stats["meeting_requests"] == {"pending": 0, "accepted": 1, "declined": 0}


async def test_decline_with_and_without_reason(serve: Serve) -> None:
    client, _ = await start(serve)
    owner = auth(f"exhibitor:{SOLAR}")
    first, second = await submit(client, SOLAR), await submit(client, SOLAR)
    base = f"/api/v1/exhibits/{SOLAR}/meeting-requests"
    plain = await client.post(f"{base}/{first['id']}/decline", headers=owner)
    assert plain.status == 200 and (await plain.json())["decline_reason"] is None
    said = await client.post(f"{base}/{second['id']}/decline", json={"reason": "Fully booked"}, headers=owner)
    assert said.status == 200
    view = await (await client.get(second["status_url"])).json()
    assert (view["status"], view["decline_reason"], view["accepted_slot"]) == (
        "declined",
        "Fully booked",
        None,
    )
    listed = await client.get(f"{base}?status=declined", headers=owner)
    assert [m["id"] for m in (await listed.json())["meeting_requests"]] == [first["id"], second["id"]]
    assert (await (await client.get(f"{base}?status=pending", headers=owner)).json())["count"] == 0
    bogus = await client.get(f"{base}?status=maybe", headers=owner)
    assert await error_of(bogus) == (400, "exhibit.bad_query")


async def test_every_invalid_field_is_listed(serve: Serve) -> None:
    client, _ = await start(serve)
    bad = {
        "name": " ",
        "organisation": "o" * 161,
        "email": "li.wei@localhost",
        "message": "",
        "slots": ["2020-12-07T15:00:00", "2020-12-06T09:00:00+08:00", "2021-03-01T10:00:00+08:00"],
        "visitor": "x",
        "fax": "none",
    }
    response = await client.post(f"/api/v1/exhibits/{HYDROGEN}/meeting-requests", json=bad)
    assert await error_of(response) == (422, "meeting.invalid")
    details = (await response.json())["error"]["details"]
    assert [(d["field"], d["reason"]) for d in details] == [
        ("name", "is required"),
        ("organisation", "must be at most 160 characters"),
        ("email", "is not a plausible email address"),
        ("message", "is required"),
        ("slots[0]", "must include a UTC offset, like 2020-12-07T15:00:00+08:00"),
        ("slots[1]", "is not in the future"),
        ("slots[2]", "must not be later than 2021-02-04T01:30:00+00:00"),
        ("visitor", "must be 8 to 64 characters of A-Z, a-z, 0-9, - and _"),
        ("fax", "unknown field"),
    ]
    url = f"/api/v1/exhibits/{HYDROGEN}/meeting-requests"
    assert await error_of(await client.post(url, data=b"name=Li", headers=JSON)) == (400, "request.bad_json")
    huge = json.dumps(form(message="m" * 17_000))
    assert await error_of(await client.post(url, data=huge, headers=JSON)) == (413, "request.too_large")
    assert await error_of(await client.post("/api/v1/exhibits/nowhere-01/meeting-requests", json=form())) == (
        404,
        "exhibit.unknown",
    )
    stats = await (await client.get(f"/api/v1/exhibits/{HYDROGEN}/stats", headers=auth("ops"))).json()
    assert stats["meeting_requests"]["pending"] == 0


async def test_slots_follow_the_server_clock(serve: Serve) -> None:
    client, clock = await start(serve)
    url = f"/api/v1/exhibits/{HYDROGEN}/meeting-requests"
    assert (await client.post(url, json=form(slots=["2020-12-06T10:00:00+08:00"]))).status == 201
    clock.set(at("2020-12-06T10:00:00+08:00"))
    late = await client.post(url, json=form(slots=["2020-12-06T10:00:00+08:00"]))
    assert (await late.json())["error"]["details"] == [
        {"field": "slots[0]", "reason": "is not in the future"}
    ]


async def test_rate_limit_per_client_and_exhibit(serve: Serve) -> None:
    client, clock = await start(serve)
    await submit(client, HYDROGEN)
    # Refused before anything is counted: the wrong media type (what any web site can post).
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        plain = await client.post(
            f"/api/v1/exhibits/{HYDROGEN}/meeting-requests",
            data=json.dumps(form()),
            headers={"Content-Type": content_type},
        )
        assert await error_of(plain) == (415, "request.unsupported_media_type")
    for _ in range(4):
        clock.advance(timedelta(minutes=1))
        await submit(client, HYDROGEN)
    clock.advance(timedelta(minutes=1))
    # The 6th within ten minutes: refused until the first one leaves the window.
    limited = await client.post(f"/api/v1/exhibits/{HYDROGEN}/meeting-requests", json=form())
    assert await error_of(limited) == (429, "meeting.rate_limited")
    assert limited.headers["Retry-After"] == "300"
    # Others still work: another exhibit, and the exhibitor's own routes.
    await submit(client, SOLAR)
    listed = await client.get(f"/api/v1/exhibits/{HYDROGEN}/meeting-requests", headers=auth("ops"))
    assert (await listed.json())["count"] == 5
    # An invalid request is not counted; the window ends ten minutes after its first request.
    invalid = await client.post(f"/api/v1/exhibits/{HYDROGEN}/meeting-requests", json=form(slots=[]))
    assert invalid.status == 422
    clock.advance(timedelta(minutes=4, seconds=59))
    again = await client.post(f"/api/v1/exhibits/{HYDROGEN}/meeting-requests", json=form())
    assert (again.status, again.headers["Retry-After"]) == (429, "1")
    clock.advance(timedelta(seconds=1))
    for _ in range(5):
        await submit(client, HYDROGEN)
    after = await client.post(f"/api/v1/exhibits/{HYDROGEN}/meeting-requests", json=form())
    assert (after.status, after.headers["Retry-After"]) == (429, "600")


async def test_rate_limit_per_client_across_exhibits(serve: Serve, store_settings: dict[str, Any]) -> None:
    # The demo catalog has 126 exhibits: one client asking 25 of them hits the per-client limit.
    client, clock = await start(serve, {**store_settings, "catalog": ""})
    page = await (await client.get("/api/v1/exhibits?per_page=25")).json()
    exhibits = [item["id"] for item in page["items"]]
    assert len(exhibits) == 25
    statuses = []
    for exhibit in exhibits:
        response = await client.post(f"/api/v1/exhibits/{exhibit}/meeting-requests", json=form())
        statuses.append(response.status)
        clock.advance(timedelta(seconds=10))
    limit = MEETINGS_PER_CLIENT.count
    assert statuses == [201] * limit + [429] * (25 - limit)
    last = await client.post(f"/api/v1/exhibits/{exhibits[-1]}/meeting-requests", json=form())
    assert await error_of(last) == (429, "meeting.rate_limited")
    assert last.headers["Retry-After"] == str(600 - 10 * 25)
    # Nothing past the limit was stored, and the window's end lets the client in again.
    listed = await client.get(f"/api/v1/exhibits/{exhibits[-1]}/meeting-requests", headers=auth("ops"))
    assert (await listed.json())["count"] == 0
    clock.advance(timedelta(seconds=600 - 10 * 25))
    await submit(client, exhibits[-1])


async def test_forged_visitor_ids_are_refused_and_not_counted(
    serve: Serve, store_settings: dict[str, Any]
) -> None:
    client, _ = await start(serve, store_settings)
    url = f"/api/v1/exhibits/{HYDROGEN}/views"
    real = await new_visitor(client)
    assert (await client.post(url, json={"visitor": real, "kind": "detail"})).status == 204
    # Invented ids of the right shape, and a real one with its signature altered or cut.
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    for forged in ("visitor-ann-0001", "a" * 38, flipped, real[:16] + real[:22], real[:-2]):
        refused = await client.post(url, json={"visitor": forged, "kind": "detail"})
        assert await error_of(refused) == (422, "visit.invalid"), forged
    stats = await (await client.get(f"/api/v1/exhibits/{HYDROGEN}/stats", headers=auth("ops"))).json()
    assert (stats["detail_views"], stats["detail_visitors"]) == (1, 1)


async def test_new_visitor_ids_are_limited_per_client(serve: Serve, store_settings: dict[str, Any]) -> None:
    client, clock = await start(serve, store_settings)
    ids = {await new_visitor(client) for _ in range(VISITOR_IDS_PER_CLIENT.count)}
    assert len(ids) == VISITOR_IDS_PER_CLIENT.count
    refused = await client.post("/api/v1/visitors")
    assert await error_of(refused) == (429, "visit.rate_limited")
    assert refused.headers["Retry-After"] == "600"
    # The ids handed out still count; after the window a new one comes.
    assert (
        await client.post(f"/api/v1/exhibits/{SOLAR}/views", json={"visitor": ids.pop(), "kind": "model"})
    ).status == 204
    clock.advance(timedelta(minutes=10))
    await new_visitor(client)


async def test_concurrent_accepts_have_one_winner(serve: Serve, store_settings: dict[str, Any]) -> None:
    client, _ = await start(serve, store_settings)
    owner = auth(f"exhibitor:{HYDROGEN}")
    for _ in range(5):
        created = await submit(client)
        url = f"/api/v1/exhibits/{HYDROGEN}/meeting-requests/{created['id']}/accept"
        first, second = await asyncio.gather(
            client.post(url, json={"slot": SLOTS[0]}, headers=owner),
            client.post(url, json={"slot": SLOTS[2]}, headers=owner),
        )
        assert sorted([first.status, second.status]) == [200, 409]
        winner = first if first.status == 200 else second
        loser = second if winner is first else first
        assert (await loser.json())["error"]["code"] == "meeting.already_decided"
        view = await (await client.get(created["status_url"])).json()
        assert view["accepted_slot"] == (await winner.json())["accepted_slot"]
        assert view["accepted_slot"] in (SLOTS[0], SLOTS[2])
    stats = await (await client.get(f"/api/v1/exhibits/{HYDROGEN}/stats", headers=owner)).json()
    assert stats["meeting_requests"] == {"pending": 0, "accepted": 5, "declined": 0}


async def test_the_requesters_view_shows_only_their_own_request(serve: Serve) -> None:
    client, _ = await start(serve)
    mine = await submit(
        client, name="Ann Example", email="ann@one.example.org", message="About hydrogen buses"
    )
    theirs = await submit(
        client, name="Bob Other", email="bob@two.example.org", message="Private terms inside"
    )
    text = await (await client.get(mine["status_url"])).text()
    assert json.loads(text)["id"] == mine["id"]
    for private in (
        "bob@two.example.org",
        "Bob Other",
        "Private terms inside",
        theirs["id"],
        "ann@one",
        "About",
    ):
        assert private not in text
    assert "bd@hydrogen.example.org" not in text  # the exhibitor's contact neither


@pytest.mark.parametrize(
    "secret",
    ["A" * 32, "too-short", "A" * 31 + "~", "meeting-link:" + "0" * 64],
)
async def test_unknown_status_links(serve: Serve, secret: str) -> None:
    client, _ = await start(serve)
    await submit(client)
    response = await client.get(f"/api/v1/meeting-requests/{secret}")
    assert await error_of(response) == (404, "meeting.unknown")


async def test_decisions_on_unknown_or_foreign_requests(serve: Serve) -> None:
    client, _ = await start(serve)
    created = await submit(client, HYDROGEN)
    solar = auth(f"exhibitor:{SOLAR}")
    foreign = f"/api/v1/exhibits/{SOLAR}/meeting-requests/{created['id']}/accept"
    assert await error_of(await client.post(foreign, json={"slot": SLOTS[0]}, headers=solar)) == (
        404,
        "meeting.unknown",
    )
    unknown = f"/api/v1/exhibits/{HYDROGEN}/meeting-requests/ffffffffffffffff/decline"
    assert await error_of(await client.post(unknown, headers=auth("ops"))) == (404, "meeting.unknown")
    view = await (await client.get(created["status_url"])).json()
    assert view["status"] == "pending"


async def test_meeting_requests_are_counted_for_the_dashboards(serve: Serve) -> None:
    client, _ = await start(serve)
    name = "forumcast_meeting_requests_total"
    before = value(await (await client.get("/metrics")).text(), name)
    assert before == 0.0
    await submit(client)
    await submit(client, SOLAR)
    refused = await client.post(f"/api/v1/exhibits/{HYDROGEN}/meeting-requests", json=form(email="nope"))
    assert refused.status == 422  # not a request: not counted
    assert value(await (await client.get("/metrics")).text(), name) == 2.0
