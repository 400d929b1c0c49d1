"""``watch`` against a stand-in watch endpoint on loopback: the report, the recording, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import imageio_ffmpeg
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from clients.connection import Backoff
from clients.source import Clip, split
from clients.watch import add_arguments, main, watch
from clients.watcher import Watcher
from server.encoding.testpattern import PatternSettings, encode_clip


@pytest.fixture(scope="module")
def pattern() -> Clip:
    return split(encode_clip("watch", 2.0, PatternSettings(width=320, height=180, gop=25)))


@dataclass
class FakeStage:
    """forumcast's ``/ws/watch/{stage}`` as a viewer sees it, playing ``pattern`` once.

    ``skip`` leaves fragments out (by sequence number), ``reinit_at`` sends a re-init before
    that sequence number, ``hold`` keeps the connection open at the end instead of closing,
    ``going_away_after`` closes with 1001 after that many fragments (an instance shutting down).
    """

    pattern: Clip
    skip: set[int] = field(default_factory=set)
    reinit_at: int | None = None
    hold: bool = False
    going_away_after: int | None = None
    token: str | None = None
    url: str = ""
    paths: list[str] = field(default_factory=list)

    def check_token(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.token is not None and f"token={self.token}" not in request.path:
            body = json.dumps({"error": {"code": "auth.forbidden", "message": "stage 'x' is closed"}})
            return connection.respond(HTTPStatus.FORBIDDEN, body)
        return None

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        init = self.pattern.init
        await ws.send(json.dumps({"type": "now", "session": None}))
        await ws.send(json.dumps({"type": "init", "mime": init.mime}))
        await ws.send(init.data)
        await ws.send(json.dumps({"type": "viewers", "count": 7}))
        for sent, fragment in enumerate(self.pattern.fragments):
            if sent == self.going_away_after:
                await ws.close(1001)
                return
            if fragment.sequence_number == self.reinit_at:
                await ws.send(json.dumps({"type": "reinit", "mime": init.mime}))
                await ws.send(init.data)
            if fragment.sequence_number not in self.skip:
                await ws.send(fragment.data)
            await asyncio.sleep(0.005)
        if self.hold:
            await ws.wait_closed()
        else:
            await ws.close(1000)


@contextlib.asynccontextmanager
async def running(stage: FakeStage) -> AsyncIterator[FakeStage]:
    async with serve(stage.handler, "127.0.0.1", 0, process_request=stage.check_token) as server:
        port = server.sockets[0].getsockname()[1]
        stage.url = f"ws://127.0.0.1:{port}/ws/watch/main"
        yield stage


async def test_watching_a_stage_measures_it_and_records_it(pattern: Clip, tmp_path: Path) -> None:
    record = tmp_path / "main.mp4"
    events: list[dict[str, object]] = []
    async with running(FakeStage(pattern)) as stage:
        report = await watch(stage.url, record=record, on_event=events.append)
    assert report.fragments == len(pattern.fragments)
    assert report.drops == 0
    assert report.reinits == 0
    assert report.first_keyframe is True
    assert report.ttff_ms is not None
    assert 0 < report.ttff_ms < 1000
    # The clip was encoded moments ago: its prft times are real and recent. The first GOP
    # (keyframes every 25 frames = 5 fragments) is the join burst, not counted.
    assert report.latency_samples == len(pattern.fragments) - 5
    assert report.join_age_ms is not None
    assert report.latency_p50_ms is not None
    assert report.latency_p99_ms is not None
    assert 0 < report.latency_p50_ms <= report.latency_p99_ms < 60_000
    assert report.viewers == 7
    assert report.mime == pattern.init.mime
    assert report.closed == "closed by the server"
    assert not report.refused
    assert [e["type"] for e in events] == ["now", "init", "viewers"]
    data = record.read_bytes()
    assert data == pattern.init.data + b"".join(f.data for f in pattern.fragments)
    assert report.bytes == len(data)
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(record), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stderr == ""


async def test_missing_fragments_are_drops_and_reinits_are_counted(pattern: Clip, tmp_path: Path) -> None:
    record = tmp_path / "gappy.mp4"
    async with running(FakeStage(pattern, skip={3, 4, 8}, reinit_at=6)) as stage:
        report = await watch(stage.url, record=record)
    assert report.drops == 3
    assert report.reinits == 1
    assert report.fragments == len(pattern.fragments) - 3
    data = record.read_bytes()
    assert data.count(b"ftyp") == 2  # the new init is appended where it came
    first, second = report.init_offsets
    assert first == 0
    assert data[second : second + len(pattern.init.data)] == pattern.init.data


async def test_duration_ends_watching(pattern: Clip) -> None:
    async with running(FakeStage(pattern, hold=True)) as stage:
        report = await watch(stage.url, duration=0.3)
    assert report.closed == "duration reached"
    assert report.fragments == len(pattern.fragments)
    assert report.seconds == pytest.approx(0.3, abs=0.2)


async def test_a_closed_stage_needs_its_token(pattern: Clip) -> None:
    async with running(FakeStage(pattern, token="invite")) as stage:
        refused = await watch(stage.url)
        admitted = await watch(stage.url + "?token=invite")
    assert refused.refused
    assert refused.fragments == 0
    assert refused.closed.startswith("forbidden")
    assert "auth.forbidden: stage 'x' is closed" in refused.closed
    assert not admitted.refused
    assert admitted.fragments == len(pattern.fragments)
    assert admitted.url == stage.url  # the token stays out of the report


async def test_nothing_listening() -> None:
    report = await watch("ws://127.0.0.1:9/ws/watch/main", open_timeout=2)
    assert report.refused
    assert report.closed.startswith("cannot connect")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="forumcast watch")
    add_arguments(parser)
    return parser.parse_args(list(argv))


async def test_cli_prints_a_summary_as_json(pattern: Clip, capsys: pytest.CaptureFixture[str]) -> None:
    async with running(FakeStage(pattern)) as stage:
        server = stage.url.removesuffix("/ws/watch/main").replace("ws://", "http://")
        assert await asyncio.to_thread(main, _args("--server", server, "--stage", "main", "--json")) == 0
        assert await asyncio.to_thread(main, _args("--server", server, "--stage", "main")) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[: out.index("}\n") + 1])
    assert summary["fragments"] == len(pattern.fragments)
    assert summary["drops"] == 0
    assert set(summary) >= {"ttff_ms", "latency_p50_ms", "latency_p99_ms", "reinits", "bytes"}
    assert f"watched {stage.url}" in out
    assert "latency p50 / p99" in out


def test_cli_needs_a_stage_or_an_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args("--server", "http://127.0.0.1:9")) == 2
    assert "--stage" in capsys.readouterr().err


async def test_several_servers_a_drop_moves_on_to_the_next(pattern: Clip, tmp_path: Path) -> None:
    record = tmp_path / "moved.mp4"
    statuses: list[str] = []
    async with (
        running(FakeStage(pattern, going_away_after=4)) as first,
        running(FakeStage(pattern)) as second,
    ):
        watcher = Watcher([first.url, second.url + "?token=t"], backoff=Backoff(initial=5))
        assert watcher.url == first.url
        report = await watcher.run(record=record, reconnect=True, on_status=statuses.append)
    assert watcher.url == second.url + "?token=t"
    assert statuses == [f"server going away; reconnecting to {second.url} in 0.0 s"]
    assert report.connections == 2
    assert report.url == second.url  # the token stays out of the report
    assert report.fragments == 4 + len(pattern.fragments)
    assert report.reinits == 1  # the second server's init segment
    assert report.closed == "closed by the server"
    assert not report.refused
    assert record.read_bytes().count(b"ftyp") == 2


async def test_reconnecting_past_an_unreachable_server_until_the_duration(pattern: Clip) -> None:
    async with running(FakeStage(pattern, hold=True)) as stage:
        report = await watch(
            ["ws://127.0.0.1:9/ws/watch/main", stage.url],
            reconnect=True,
            duration=0.5,
            backoff=Backoff(initial=5),
        )
    assert report.connections == 1
    assert report.fragments == len(pattern.fragments)
    assert report.closed == "duration reached"
    assert not report.refused


async def test_reconnecting_to_nothing_is_refused_at_the_end(pattern: Clip) -> None:
    report = await watch(
        ["ws://127.0.0.1:9/ws/watch/main", "ws://127.0.0.1:7/ws/watch/main"],
        reconnect=True,
        duration=0.3,
        backoff=Backoff(initial=0.05),
    )
    assert report.connections == 0
    assert report.refused
    assert report.closed == "duration reached"


async def test_cli_with_two_servers_continues_on_the_second(
    pattern: Clip, capsys: pytest.CaptureFixture[str]
) -> None:
    async with (
        running(FakeStage(pattern, going_away_after=3)) as first,
        running(FakeStage(pattern)) as second,
    ):
        servers = [s.url.removesuffix("/ws/watch/main").replace("ws://", "http://") for s in (first, second)]
        args = _args("--server", ",".join(servers), "--stage", "main", "--json")
        assert await asyncio.to_thread(main, args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["connections"] == 2
    assert summary["url"] == second.url
    assert summary["fragments"] == 3 + len(pattern.fragments)
    assert f"reconnecting to {second.url} in 0.0 s" in captured.err
