"""The audit log over real HTTP: every producer, ops and exhibitor action leaves one entry with
who, what, when (the service clock) and from where; reading needs ops; filters; the JSONL
export; the bound (chunks trimmed as entries are appended) on both stores."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import redis

from server import audit
from server.clock import ManualClock
from server.store import open_store
from tests.conftest import TOKENS, Serve, at, auth
from tests.exhibits import assets
from tests.exhibits.test_engagement_routes import SLOTS, form

NOW = at("2020-12-06T09:30:00+08:00")
HYDROGEN = "cn-hydrogen-01"


def token(role: str, stage: str | None = None) -> tuple[dict[str, str], str]:
    issued, jti = TOKENS.issue_with_id(role, stage=stage, ttl=timedelta(hours=1), subject=f"{role} person")
    return {"Authorization": f"Bearer {issued}"}, jti


async def test_every_action_is_recorded(serve: Serve, store_settings: dict[str, Any]) -> None:
    clock = ManualClock(NOW)
    client = await serve(clock=clock, **store_settings)
    producer, producer_jti = token("producer", "main")
    ops, ops_jti = token("ops")
    owner, owner_jti = token(f"exhibitor:{HYDROGEN}")
    _, victim_jti = token("viewer:closed")
    meetings = []
    for _ in range(2):
        created = await client.post(f"/api/v1/exhibits/{HYDROGEN}/meeting-requests", json=form())
        assert created.status == 201
        meetings.append((await created.json())["id"])

    steps = [
        ("/api/v1/stages/main/take", {"input": "slate"}, producer),
        ("/api/v1/stages/main/auto", None, producer),
        ("/api/v1/stages/main/delay", {"minutes": 5}, producer),
        ("/api/v1/inputs/main-cam/key/rotate", None, producer),
        ("/api/v1/tokens/revoke", {"jti": victim_jti}, ops),
        (f"/api/v1/exhibits/{HYDROGEN}/meeting-requests/{meetings[0]}/accept", {"slot": SLOTS[0]}, owner),
        (f"/api/v1/exhibits/{HYDROGEN}/meeting-requests/{meetings[1]}/decline", {}, owner),
    ]
    for minute, (path, body, headers) in enumerate(steps):
        clock.set(NOW + timedelta(minutes=minute))
        response = await client.post(path, json=body, headers=headers)
        assert response.status == 200, (path, await response.text())
    clock.set(NOW + timedelta(minutes=len(steps)))
    upload = await client.post(
        f"/api/v1/exhibits/{HYDROGEN}/model",
        params={"filename": "tower.stl", "unit": "mm"},
        data=assets.export(assets.tower(), "stl"),
        headers=owner,
    )
    assert upload.status == 202
    job = (await upload.json())["id"]
    # A refused action leaves no entry.
    refused = await client.post("/api/v1/stages/main/take", json={"input": "nowhere"}, headers=producer)
    assert refused.status == 404

    got = await client.get("/api/v1/audit", headers=ops)
    assert got.status == 200
    entries = (await got.json())["entries"]
    who = {
        "producer": {"subject": "producer person", "role": "producer", "scope": "main", "jti": producer_jti},
        "ops": {"subject": "ops person", "role": "ops", "scope": None, "jti": ops_jti},
        "owner": {"subject": f"exhibitor:{HYDROGEN} person", "role": "exhibitor", "scope": HYDROGEN,
                  "jti": owner_jti},
    }  # fmt: skip
    expected = [
        ("program.take", "stage:main", who["producer"], {"input": "slate", "cut": "keyframe"}),
        ("program.auto", "stage:main", who["producer"], {}),
        ("schedule.delay", "stage:main", who["producer"], {"minutes": 5}),
        ("stream_key.rotate", "input:main-cam", who["producer"], {"stage": "main"}),
        ("token.revoke", f"token:{victim_jti}", who["ops"], {"expires": None}),
        ("meeting.accept", f"exhibit:{HYDROGEN}/meeting:{meetings[0]}", who["owner"], {}),
        ("meeting.decline", f"exhibit:{HYDROGEN}/meeting:{meetings[1]}", who["owner"], {}),
        ("model.upload", f"exhibit:{HYDROGEN}", who["owner"], {"file": "tower.stl", "job": job}),
    ]
    assert len(entries) == len(expected)
    for minute, (entry, (action, target, by, details)) in enumerate(zip(entries, expected, strict=True)):
        assert (entry["action"], entry["target"], entry["who"]) == (action, target, by)
        assert entry["details"].items() >= details.items()
        assert at(entry["at"]) == NOW + timedelta(minutes=minute)
        assert entry["from"] == "127.0.0.1" and entry["seq"] == minute + 1

    # Filters.
    takes = (await (await client.get("/api/v1/audit?action=program.take", headers=ops)).json())["entries"]
    assert [e["seq"] for e in takes] == [1]
    since = (NOW + timedelta(minutes=5)).isoformat()
    later = (await (await client.get("/api/v1/audit", params={"since": since}, headers=ops)).json())[
        "entries"
    ]
    assert [e["action"] for e in later] == ["meeting.accept", "meeting.decline", "model.upload"]
    last = (await (await client.get("/api/v1/audit?limit=2", headers=ops)).json())["entries"]
    assert [e["seq"] for e in last] == [7, 8]
    # The export: one JSON object per line, the same entries.
    export = await client.get("/api/v1/audit.jsonl", headers=ops)
    assert export.status == 200 and export.content_type == "application/x-ndjson"
    lines = (await export.text()).splitlines()
    assert [json.loads(line) for line in lines] == entries
    filtered = await client.get("/api/v1/audit.jsonl?action=model.upload", headers=ops)
    assert [json.loads(line)["seq"] for line in (await filtered.text()).splitlines()] == [8]


async def test_reading_the_audit_log_needs_ops(serve: Serve) -> None:
    client = await serve(clock=ManualClock(NOW))
    for path in ("/api/v1/audit", "/api/v1/audit.jsonl"):
        forbidden = await client.get(path, headers=auth("producer"))
        assert forbidden.status == 403 and (await forbidden.json())["error"]["code"] == "auth.forbidden"
        assert (await client.get(path)).status == 401
    ops = auth("ops")
    # '²' passes str.isdigit() and 5000 digits are too many for int(): both were 500s.
    queries = ("since=yesterday", "since=2020-12-06T09:30:00", "limit=0", "limit=1001", "limit=x", "limit=²")
    for query in (*queries, "limit=" + "9" * 5000):
        bad = await client.get(f"/api/v1/audit?{query}", headers=ops)
        assert bad.status == 400 and (await bad.json())["error"]["code"] == "audit.bad_query", query
    assert (await (await client.get("/api/v1/audit", headers=ops)).json()) == {"entries": []}
    assert (await (await client.get("/api/v1/audit.jsonl", headers=ops)).text()) == ""


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_the_log_is_bounded(kind: str, request: pytest.FixtureRequest) -> None:
    url = None
    if kind == "redis":
        url = request.getfixturevalue("redis_server").url
        redis.Redis.from_url(url).flushdb()
    store = open_store(url, namespace="bounded")
    limits = {"chunk": 3, "keep": 2}
    try:
        for n in range(1, 12):
            await audit.append(
                store, at=NOW + timedelta(seconds=n), who={}, action=f"a{n % 2}", target="t", remote=None,
                **limits,
            )  # fmt: skip
        kept = await audit.read(store, **limits)
        # Eleven entries in chunks of three, two chunks kept: the newest chunk holds 10-11.
        assert [e["seq"] for e in kept] == [7, 8, 9, 10, 11]
        assert await store.items("audit:0") == [] and await store.items("audit:1") == []
        odd = await audit.read(store, action="a1", limit=2, **limits)
        assert [e["seq"] for e in odd] == [9, 11]
    finally:
        await store.close()
