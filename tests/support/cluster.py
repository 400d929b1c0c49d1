"""Real forumcast instances sharing one real redis-server, for the multi-instance tests.

:class:`Instance` is ``python -m server serve`` in a subprocess on a free loopback port with
its own instance id and data dir; :class:`Cluster` starts several on one Redis and the
event of :func:`live_event`, with one secret so one token works on every instance, and
real publishers (``forumcast publish --loop``) on a small live event.
:class:`Recording` is a WebSocket viewer of a stage that keeps every
message with its arrival time, for byte-for-byte comparisons and decode checks.

Nothing here knows how the cluster works inside: tests look at it from outside, through
HTTP, WebSockets, Redis keys and signals, as ops and viewers would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from server.auth import Tokens
from server.media.fmp4 import Fmp4Parser
from server.media.types import InitSegment, MediaFragment
from tests.support.redis_server import RedisServer, free_port

SECRET = "forumcast-cluster-tests-secret-0123456789abcdef"
TOKENS = Tokens(SECRET)
READY_TIMEOUT = 30.0


def token(role: str, stage: str | None = None) -> str:
    return TOKENS.issue(role, stage=stage, ttl=timedelta(hours=1), subject="cluster-test")


def live_event(path: Path) -> Path:
    """A small event whose sessions run now: stage ``main`` shows ``main-cam`` (backed up by
    ``stern-uk``) and ``forum-a`` shows ``forum-a-cam``, for the next two hours."""
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = (now - timedelta(minutes=10)).isoformat(), (now + timedelta(hours=2)).isoformat()
    path.write_text(
        f"""event: {{id: clustercon, title: {{zh: 集群测试, en: Cluster test}}, timezone: Asia/Shanghai}}
venues:
  - {{id: shenzhen, name: {{zh: 深圳, en: Shenzhen}}, timezone: Asia/Shanghai, city: Shenzhen}}
stages:
  - id: main
    title: {{zh: 主论坛, en: Main Forum}}
    kind: main
    venue: shenzhen
    inputs:
      - {{id: main-cam, title: Main camera, kind: camera}}
      - {{id: stern-uk, title: Remote link UK, kind: remote}}
  - id: forum-a
    title: {{zh: 分论坛A, en: Forum A}}
    kind: forum
    venue: shenzhen
    inputs:
      - {{id: forum-a-cam, title: Forum A camera, kind: camera}}
sessions:
  - {{id: dialogue, stage: main, title: {{zh: 对话, en: Dialogue}}, start: "{start}", end: "{end}",
     input: main-cam, backup_input: stern-uk}}
  - {{id: forum-talk, stage: forum-a, title: {{zh: 论坛, en: Forum talk}}, start: "{start}", end: "{end}",
     input: forum-a-cam}}
""",
        encoding="utf-8",
    )
    return path


class Publisher:
    """``forumcast publish CLIP --loop`` into one input, as a venue encoder would."""

    def __init__(self, clip: Path, input_id: str, servers: list[str], log: Path) -> None:
        self.input_id = input_id
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "clients",
                    "publish",
                    str(clip),
                    "--loop",
                    "--quiet",
                    "--input",
                    input_id,
                    "--key",
                    TOKENS.stream_key(input_id),
                    "--server",
                    ",".join(servers),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Instance:
    """One ``forumcast serve`` process; restartable on the same port and data dir."""

    def __init__(self, name: str, redis_url: str, *, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.redis_url = redis_url
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix=f"forumcast-{name}-")
        self.env = env or {}
        self.log = Path(self.data) / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "FORUMCAST_INSTANCE_ID": self.name,
            "FORUMCAST_SECRET": SECRET,
            "FORUMCAST_DATA_DIR": self.data,
            "FORUMCAST_DEMO_INPUTS": "false",
            "FORUMCAST_DEMO_MODELS": "false",
            "FORUMCAST_SLATE_SIZE": "320x180",
            **self.env,
        }
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--redis-url",
                    self.redis_url,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError, AssertionError):
                if self.get("/healthz")[0] == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not answer /healthz within {timeout} s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """``kill -9``: no goodbye, no lease released."""
        if self.alive():
            self.signal(signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def get(self, path: str, role: str | None = "ops") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token(role)}"} if role else {}
        return self._call(urllib.request.Request(self.url + path, headers=headers))

    def post(self, path: str, body: dict[str, Any], role: str = "producer") -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token(role)}", "Content-Type": "application/json"},
            method="POST",
        )
        return self._call(request)

    @staticmethod
    def _call(request: urllib.request.Request) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                status = response.status
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raw, status, kind = exc.read(), exc.code, exc.headers.get("Content-Type", "")
        return status, (json.loads(raw) if "json" in kind else raw)

    def leader_of(self, stage: str) -> tuple[str, int] | None:
        status, body = self.get("/api/v1/cluster")
        assert status == 200, body
        for entry in body["stages"]:
            if entry["id"] == stage and entry["leader"]:
                return entry["leader"]["instance"], entry["leader"]["epoch"]
        return None


@dataclass
class Cluster:
    """A redis-server and ``size`` instances on it, all started and every stage led."""

    root: Path
    clip: Path
    size: int = 3
    env: dict[str, str] = field(default_factory=dict)
    #: A Redis someone else runs (a Sentinel deployment, say); else the cluster starts its own.
    redis_url: str = ""
    redis: RedisServer = field(init=False)
    instances: list[Instance] = field(init=False, default_factory=list)
    publishers: dict[str, Publisher] = field(init=False, default_factory=dict)

    def __enter__(self) -> Cluster:
        self.root.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.root / "redis", aof=True)
        if not self.redis_url:
            self.redis.start()
            self.redis_url = self.redis.url
        try:
            names = "abcdefgh"[: self.size]
            event = live_event(self.root / "event.yaml")
            env = {"FORUMCAST_EVENT": str(event), **self.env}
            self.instances = [Instance(n, self.redis_url, env=env) for n in names]
            for instance in self.instances:
                instance.start()
            for instance in self.instances:
                instance.wait_ready()
            # the venue encoders publish to the first instance (the others only as fallbacks)
            servers = [i.url for i in self.instances]
            for input_id in ("main-cam", "stern-uk", "forum-a-cam"):
                self.publishers[input_id] = Publisher(
                    self.clip, input_id, servers, self.root / f"{input_id}.log"
                )
            self.wait_led("main")
            self.wait_publishing(self.instances[0])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for publisher in self.publishers.values():
            publisher.stop()
        for instance in self.instances:
            instance.stop()
            shutil.rmtree(instance.data, ignore_errors=True)
        self.redis.stop()

    def wait_publishing(self, instance: Instance, timeout: float = 30.0) -> dict[str, Any]:
        """Every publisher is connected and sending, as ``instance`` lists the inputs."""
        deadline = time.monotonic() + timeout
        listed: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status, body = instance.get("/api/v1/inputs", role="producer")
            listed = {i["id"]: i for i in body["inputs"]} if status == 200 else {}
            if listed and all(
                listed[i]["state"] == "live" and listed[i]["publisher"] for i in self.publishers
            ):
                return listed
            time.sleep(0.2)
        raise AssertionError(f"the publishers are not all live within {timeout} s: {listed}")

    def by_name(self, name: str) -> Instance:
        return next(i for i in self.instances if i.name == name)

    def wait_led(self, stage: str, *, not_by: str | None = None, timeout: float = 15.0) -> tuple[str, int]:
        """The stage's leader, once an instance (other than ``not_by``) leads it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for instance in self.instances:
                if not instance.alive():
                    continue
                with contextlib.suppress(OSError, AssertionError):
                    leader = instance.leader_of(stage)
                    if leader is not None and leader[0] != not_by:
                        return leader
            time.sleep(0.1)
        raise AssertionError(f"no instance leads {stage} within {timeout} s")


@dataclass
class Recording:
    """What one WebSocket viewer of a stage received: text events and binary media, timed."""

    url: str
    events: list[dict[str, Any]] = field(default_factory=list)
    media: list[tuple[float, bytes]] = field(default_factory=list)
    close_code: int | None = None

    async def run(self, seconds: float) -> Recording:
        async with connect(self.url, max_size=None) as ws:
            end = time.monotonic() + seconds
            with contextlib.suppress(TimeoutError):
                while (left := end - time.monotonic()) > 0:
                    message = await asyncio.wait_for(ws.recv(), left)
                    if isinstance(message, str):
                        self.events.append(json.loads(message))
                    else:
                        self.media.append((time.monotonic(), message))
            self.close_code = ws.close_code
        return self

    def parsed(self) -> tuple[list[InitSegment], list[MediaFragment]]:
        parser = Fmp4Parser()
        inits: list[InitSegment] = []
        fragments: list[MediaFragment] = []
        for _, data in self.media:
            for item in parser.feed(data):
                (inits if isinstance(item, InitSegment) else fragments).append(item)  # type: ignore[arg-type]
        return inits, fragments

    def fragment_bytes(self) -> list[bytes]:
        return [f.data for f in self.parsed()[1]]

    def stream(self) -> bytes:
        return b"".join(data for _, data in self.media)


def assert_timeline(fragments: list[MediaFragment]) -> None:
    """Each track's decode times only move forwards, with no overlap."""
    ends: dict[int, int] = {}
    for fragment in fragments:
        for track in fragment.tracks:
            end = ends.get(track.track_id)
            assert end is None or track.base_decode_time >= end, (track.track_id, end, track.base_decode_time)
            ends[track.track_id] = track.base_decode_time + track.duration


def decode_errors(stream: bytes, where: Path) -> str:
    """What ffmpeg says decoding ``stream`` (an fMP4 recording) to nothing: '' when clean."""
    import imageio_ffmpeg  # the test suite's ffmpeg (libx264, AAC, Opus), as tests/conftest.py's

    where.write_bytes(stream)
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-xerror", "-i", str(where), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return result.stderr.strip() + ("" if result.returncode == 0 else f" (exit {result.returncode})")
