"""The ``forumcast`` command as a real process: serve, config errors, tokens, shutdown."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import weakref
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from server.auth import Tokens
from tests.conftest import FIXTURES, SECRET
from tests.support.redis_server import RedisServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


class Server:
    """``forumcast serve`` in a subprocess on a free loopback port."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="forumcast-cli-")
        # Removed when the Server object goes, however the test ended the process.
        weakref.finalize(self, shutil.rmtree, self.data, True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # The demo's looping pictures and its 3D models cost CPU; the tests that need them
            # turn them on. Each server gets its own data dir.
            env={
                **os.environ,
                "FORUMCAST_DEMO_INPUTS": "false",
                "FORUMCAST_DEMO_MODELS": "false",
                "FORUMCAST_DATA_DIR": self.data,
                **(env or {}),
            },
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early: {self.proc.communicate()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("server did not start listening within 30 s")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err


@pytest.fixture
def demo() -> Iterator[Server]:
    server = Server()
    yield server
    if server.proc.poll() is None:
        server.stop()


def test_demo_serves_live_stages_and_stops_cleanly(demo: Server) -> None:
    status, body = demo.get("/api/v1/stages")
    assert status == 200
    stages = {s["id"]: s for s in json.loads(body)["stages"]}
    assert stages["main"]["state"] == "live"
    live = [s for s in stages.values() if s["state"] == "live" and not s["closed"]]
    assert len(live) >= 5
    status, body = demo.get("/api/v1/event")
    assert json.loads(body)["demo"] is True
    code, out, err = demo.stop(signal.SIGINT)
    assert code == 0, err
    token_line = next(line for line in out.splitlines() if line.startswith("producer token"))
    assert token_line.count(".") == 2  # a JWT was printed
    assert "GET /api/v1/stages 200" in err  # one log line per request


def test_demo_at_real_dates() -> None:
    server = Server("--real-dates")
    try:
        event = json.loads(server.get("/api/v1/event")[1])
        assert event["days"] == ["2020-12-06", "2020-12-07", "2020-12-08"]
        stages = json.loads(server.get("/api/v1/stages")[1])["stages"]
        assert {s["state"] for s in stages if not s["closed"]} == {"ended"}
        assert {s["state"] for s in stages if s["closed"]} == {"closed"}  # not for the uninvited
    finally:
        assert server.stop(signal.SIGTERM)[0] == 0


def test_json_logs_and_printed_token_works() -> None:
    server = Server("--log-format", "json")
    try:
        assert server.get("/api/v1/stages/main")[0] == 200
    finally:
        code, _, err = server.stop()
    assert code == 0
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    request = next(r for r in records if r.get("route") == "/api/v1/stages/{stage}")
    assert request["status"] == 200 and request["logger"] == "forumcast.http"


def test_graceful_shutdown_finishes_a_request_in_flight(tmp_path: Path) -> None:
    """SIGTERM while a delay is being written to a Redis that is briefly away: the request
    completes once Redis is back, new connections are refused meanwhile, the exit code is 0."""
    redis = RedisServer(tmp_path)
    redis.start()
    server = Server("--redis-url", redis.url, env={"FORUMCAST_SECRET": SECRET})
    try:
        token = Tokens(SECRET).issue("producer", ttl=timedelta(minutes=5))
        body = b'{"minutes": 10}'
        redis.stop()  # the handler will be stuck retrying the store
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
            head = (
                "POST /api/v1/stages/main/delay HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            time.sleep(0.3)
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=1):
                pass  # no longer accepting
            redis.restart()
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 200"), response[:300]
        assert b'"delay_minutes": 10' in response
        _, err = server.proc.communicate(timeout=30)
        assert server.proc.returncode == 0, err
        assert "POST /api/v1/stages/main/delay 200" in err
    finally:
        if server.proc.poll() is None:
            server.stop()
        redis.stop()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("colour = 'green'\n", "unknown key 'colour'"),
        ("port = 'http'\n", "'port' in"),
        ("[stream_keys]\nmain-cam = 'letmein'\n", "stream keys of main-cam are shorter than 16 characters"),
    ],
)
def test_config_errors_exit_2_with_one_line(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    result = run("serve", "--config", str(path))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_missing_config_and_env_errors() -> None:
    result = run("serve", "--config", "/nonexistent/forumcast.toml")
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = run("serve", env={"FORUMCAST_PORT": "eighty"})
    assert result.returncode == 2 and "FORUMCAST_PORT" in result.stderr
    result = run("serve", "--port", "99999")
    assert result.returncode == 2 and "between 1 and 65535" in result.stderr


def test_bad_event_file_lists_every_problem(tmp_path: Path) -> None:
    text = (FIXTURES / "event.yaml").read_text()
    text = text.replace("end: 2020-12-06T10:00:00+08:00", "end: 2020-12-06T08:00:00+08:00", 1)
    text = text.replace("stage: forum-a", "stage: forum-b")
    path = tmp_path / "event.yaml"
    path.write_text(text)
    result = run("serve", "--event", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "2 problem(s)" in result.stderr
    assert f"{path}: sessions[0].end: ends" in result.stderr
    assert f"{path}: sessions[4].stage: unknown stage 'forum-b'" in result.stderr


def test_serves_a_frab_file(tmp_path: Path) -> None:
    demo = Server("--real-dates")
    try:
        schedule = demo.get("/api/v1/schedule.json")[1]
    finally:
        demo.stop()
    path = tmp_path / "schedule.json"
    path.write_bytes(schedule)
    server = Server("--event", str(path))
    try:
        sessions = json.loads(server.get("/api/v1/sessions")[1])
        original = json.loads(schedule)
        count = sum(len(r) for d in original["schedule"]["conference"]["days"] for r in d["rooms"].values())
        assert sessions["count"] == count > 40
    finally:
        assert server.stop()[0] == 0


def test_token_command() -> None:
    result = run(
        "token", "--role", "producer", "--stage", "main", "--ttl", "8h", env={"FORUMCAST_SECRET": SECRET}
    )
    assert result.returncode == 0, result.stderr
    who = Tokens(SECRET).verify(result.stdout.strip())
    assert (who.role, who.scope) == ("producer", "main")
    viewer = run("token", "--role", "viewer:battery-seminar", env={"FORUMCAST_SECRET": SECRET})
    assert Tokens(SECRET).verify(viewer.stdout.strip()).can_watch("battery-seminar")
    for args, message in (
        (("--role", "admin"), "unknown role"),
        (("--role", "ops", "--ttl", "forever"), "not a duration"),
    ):
        result = run("token", *args, env={"FORUMCAST_SECRET": SECRET})
        assert result.returncode == 2 and message in result.stderr
    env = {k: v for k, v in os.environ.items() if k != "FORUMCAST_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "server", "token", "--role", "ops"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 2 and "no secret configured" in result.stderr


def test_shutdown_closes_websockets_with_1001_and_the_demo_plays() -> None:
    """The demo's looping pictures are live: ``forumcast watch`` sees a stream; on SIGTERM an
    open viewer is closed with 1001 (going away) and the process exits 0."""
    import asyncio

    from websockets.asyncio.client import connect

    from clients.watch import watch

    server = Server(env={"FORUMCAST_DEMO_INPUTS": "true"})
    try:
        result = run("watch", "--server", f"http://127.0.0.1:{server.port}", "--stage", "main",
                     "--duration", "4", "--json")  # fmt: skip
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["fragments"] >= 5 and report["first_keyframe"] and report["drops"] == 0
        # Each looped fragment carries the wall time it was published at (prft).
        assert report["latency_p99_ms"] is not None and 0 <= report["latency_p99_ms"] < 500
        assert report["mime"].startswith('video/mp4; codecs="avc1.')

        async def watch_until_shutdown() -> tuple[int | None, float]:
            async with connect(f"ws://127.0.0.1:{server.port}/ws/watch/main") as ws:
                await ws.recv()
                server.proc.send_signal(signal.SIGTERM)
                started = time.monotonic()
                with contextlib.suppress(Exception):
                    while True:
                        await ws.recv()
                return ws.close_code, time.monotonic() - started

        code, took = asyncio.run(watch_until_shutdown())
        assert code == 1001 and took < 5
        _, err = server.proc.communicate(timeout=30)
        assert server.proc.returncode == 0, err
        assert watch  # the API the CLI wraps is importable for tools
    finally:
        if server.proc.poll() is None:
            server.stop()


@pytest.mark.parametrize("kind", ["rtmp", "srt"])
def test_a_taken_ingest_port_is_one_clear_line_before_anything_starts(kind: str, tmp_path: Path) -> None:
    """A second instance on one machine wants the same RTMP (TCP) or SRT (UDP) port."""
    family = socket.SOCK_STREAM if kind == "rtmp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, family) as taken:
        taken.bind(("127.0.0.1", 0))
        if kind == "rtmp":
            taken.listen()
        port = taken.getsockname()[1]
        env = {f"FORUMCAST_{kind.upper()}_PORT": str(port), "FORUMCAST_DATA_DIR": str(tmp_path)}
        result = run("serve", "--host", "127.0.0.1", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert f"cannot listen for {kind.upper()} on port {port}" in result.stderr
    assert f"set {kind}_port to another port, or 0" in result.stderr
    assert "Traceback" not in result.stderr
