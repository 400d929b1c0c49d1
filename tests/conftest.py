"""Shared fixtures: a small test event, tokens, and real servers on loopback."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from aiohttp.test_utils import TestClient

from server.auth import Tokens
from server.clock import Clock, ManualClock
from server.config import Config
from server.http.app import create_app
from server.schedule.model import Event
from server.schedule.yaml_format import load_yaml
from tests.support.redis_server import RedisServer

FIXTURES = Path(__file__).parent / "fixtures"

# Every forumcast the tests start (in process or as a child, which inherits the environment)
# leaves the RTMP and SRT ports off unless the test asks for them: servers run side by side
# and would otherwise all want 1935 and 9000. (setdefault: a test run may set them.)
for _name in ("FORUMCAST_RTMP_PORT", "FORUMCAST_SRT_PORT"):
    os.environ.setdefault(_name, "0")
SECRET = "test-secret-0123456789abcdefghijklmnop"
TOKENS = Tokens(SECRET)


def auth(role: str, stage: str | None = None, ttl: timedelta = timedelta(hours=1)) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.issue(role, stage=stage, ttl=ttl, subject='test')}"}


def frab_validator() -> Any:
    """A validator for frab/pretalx schedule.json (our own statement of the format, in
    tests/fixtures), with format checks (uuid, date-time, uri) on."""
    import json

    import jsonschema

    schema = json.loads((FIXTURES / "frab-schedule.schema.json").read_text(encoding="utf-8"))
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


@pytest.fixture
def event() -> Event:
    return load_yaml(FIXTURES / "event.yaml")


Serve = Callable[..., Awaitable[TestClient[Any, Any]]]


def server_config(data_dir: Path, **changes: Any) -> Config:
    """Settings for a test server: its own data dir, the small fixture catalog, no demo models,
    a small slate (encoded per stage at start)."""
    base = Config(
        data_dir=str(data_dir),
        catalog=str(FIXTURES / "exhibits.yaml"),
        demo_models=False,
        slate_size="320x180",
        rtmp_port=0,
        srt_port=0,
    )
    return base.replace(**changes)


@pytest.fixture
def serve(aiohttp_client: Any, event: Event, tmp_path: Path) -> Serve:
    """Start the real app on a loopback port: ``await serve(event=..., clock=..., **settings)``.

    The app gets :func:`server_config` with ``settings`` (data under the test's tmp_path),
    unless a whole ``config`` is given.
    """

    async def start(
        *, event: Event = event, clock: Clock | None = None, config: Config | None = None, **settings: Any
    ) -> TestClient[Any, Any]:
        config = config or server_config(tmp_path / "data", **settings)
        app = create_app(config, event, tokens=TOKENS, clock=clock)
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return start


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
async def store_settings(request: pytest.FixtureRequest, event: Event) -> dict[str, Any]:
    """Server settings for the memory store, or for the session's Redis with this event's keys cleared."""
    if request.param == "memory":
        return {}
    server: RedisServer = request.getfixturevalue("redis_server")
    raw = redis.asyncio.Redis.from_url(server.url)
    keys = [key async for key in raw.scan_iter(f"forumcast:{event.id}:*")]
    if keys:
        await raw.delete(*keys)
    await raw.aclose()
    return {"redis_url": server.url}


# Every event loop the tests create runs in asyncio debug mode, which logs any callback
# that holds the loop for longer than 0.1 s; no_blocking_calls turns the long ones into failures.
os.environ["PYTHONASYNCIODEBUG"] = "1"
BLOCKING_LIMIT = 0.5
_TOOK = re.compile(r"^Executing .* took ([0-9.]+) seconds$", re.S)


class _SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = _TOOK.match(record.getMessage())
        if match and float(match.group(1)) > BLOCKING_LIMIT:
            self.messages.append(record.getMessage())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "out_of_process_servers: every server of the test runs in its own process, and the "
        "test's event loop only drives hundreds of load-generating clients; a slow step of "
        "theirs (CPU contention with the other test process) says nothing about our code, so "
        "no_blocking_calls does not check it",
    )


@pytest.fixture(autouse=True)
def no_blocking_calls(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test in which something blocked the event loop for more than BLOCKING_LIMIT."""
    if request.node.get_closest_marker("out_of_process_servers"):
        yield
        return
    handler = _SlowCallbacks()
    logging.getLogger("asyncio").addHandler(handler)
    yield
    logging.getLogger("asyncio").removeHandler(handler)
    assert not handler.messages, f"the event loop was blocked: {handler.messages}"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ffmpeg() -> str:
    """The ffmpeg of the imageio-ffmpeg wheel (libx264, AAC, Opus)."""
    import imageio_ffmpeg

    exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    return exe


def make_clip(
    path: Path, *, seconds: float = 6.0, gop: int = 25, size: str = "320x240", fragment_ms: int = 200
) -> Path:
    """An H.264 + AAC fragmented MP4 made by ffmpeg: 25 fps, a keyframe every ``gop`` frames."""
    import subprocess

    if not path.exists():
        subprocess.run(
            [
                ffmpeg(), "-v", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0",
                "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "64k",
                "-movflags", "frag_keyframe+empty_moov+default_base_moof",
                "-frag_duration", str(fragment_ms * 1000),
                str(path),
            ],
            check=True,
        )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4")


#: An instant inside the fixture event's "opening" session on stage main, whose input is
#: main-cam: serving at it, automation puts main-cam on the main program from its first keyframe.
OPENING_ON_MAIN_CAM = "2020-12-06T09:30:00+08:00"


def main_cam_on_air() -> Clock:
    """A clock running in real time from inside the opening session: the main stage shows
    main-cam whenever it publishes (and its slate while it does not), so relay tests see what
    main-cam sends."""
    return ManualClock(at(OPENING_ON_MAIN_CAM), rate=1.0)
