"""The embedded store on disk (server/store/snapshot.py): every kind of entry comes back after a
restart, rate-limit windows do not, a broken file is moved aside; and a real ``forumcast serve``
without Redis keeps a delay and a meeting request across a restart with the same data dir."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from server.auth import Tokens
from server.store.memory import SNAPSHOT_AFTER, MemoryBackend, MemoryStore
from tests.conftest import SECRET
from tests.test_cli import Server


def store(path: Path) -> MemoryStore:
    return MemoryStore("snap", backend=MemoryBackend(snapshot_file=path))


async def test_every_kind_of_entry_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "snap.json"
    first = store(path)
    await first.set("delay", {"minutes": 10, "by": "李"})
    await first.append("audit", {"action": "take"})
    await first.append("audit", {"action": "auto"})
    await first.incr("views", "detail", 3)
    await first.add("visitors", "v-1")
    await first.add("visitors", "v-2")
    await first.hit("guesses", window=60.0, now=0.0)
    await asyncio.sleep(SNAPSHOT_AFTER + 0.2)  # written on its own after a change
    assert path.exists()
    await first.set("later", 1)
    await first.close()  # and at close, without waiting
    again = store(path)
    assert await again.get("delay") == {"minutes": 10, "by": "李"}
    assert await again.items("audit") == [{"action": "take"}, {"action": "auto"}]
    assert await again.counters("views") == {"detail": 3}
    assert await again.cardinality("visitors") == 2 and not await again.add("visitors", "v-1")
    assert await again.get("later") == 1
    assert (await again.hits("guesses", now=1.0)).count == 0  # windows last minutes: not kept
    assert not path.with_name("snap.json.partial").exists()


async def test_an_unreadable_snapshot_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "snap.json"
    path.write_text('{"version": 1, "entries": {"x": ["teapot", 1]}}')
    with caplog.at_level(logging.WARNING, logger="forumcast.store"):
        fresh = store(path)
    assert await fresh.get("x") is None
    assert path.with_name("snap.json.unreadable").read_text().startswith('{"version": 1')
    assert "unreadable" in caplog.text and "starting empty" in caplog.text
    await fresh.set("x", "ok")
    await fresh.close()
    assert json.loads(path.read_text())["entries"]["forumcast:snap:x"] == ["value", '"ok"']


def post(server: Server, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}{path}",
        data=json.dumps(body).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_embedded_default_keeps_a_delay_and_a_meeting_request_across_a_restart(tmp_path: Path) -> None:
    env = {"FORUMCAST_SECRET": SECRET, "FORUMCAST_DATA_DIR": str(tmp_path / "data")}
    producer = Tokens(SECRET).issue("producer", ttl=timedelta(hours=1))
    server = Server(env=env)  # the demo event, shifted so that main is live now
    try:
        status, body = post(server, "/api/v1/stages/main/delay", {"minutes": 7}, producer)
        assert status == 200, body
        exhibit = json.loads(server.get("/api/v1/exhibits?per_page=1")[1])["items"][0]["id"]
        day = (datetime.now(UTC) + timedelta(days=2)).replace(hour=2, minute=0, second=0, microsecond=0)
        form = {
            "name": "Li Wei",
            "organisation": "Shenzhen Green Capital",
            "email": "li.wei@green-capital.example.cn",
            "message": "A pilot in Qianhai?",
            "slots": [day.isoformat()],
        }
        status, made = post(server, f"/api/v1/exhibits/{exhibit}/meeting-requests", form)
        assert status == 201, made
    finally:
        assert server.stop()[0] == 0
    restarted = Server(env=env)
    try:
        stage = json.loads(restarted.get("/api/v1/stages/main")[1])
        assert stage["delay_minutes"] == 7
        status, kept = restarted.get(made["status_url"])
        assert status == 200 and json.loads(kept)["status"] == "pending"
    finally:
        assert restarted.stop()[0] == 0
