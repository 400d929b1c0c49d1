"""``forumcast publish``: its lines for server events and the command, against a stand-in publish
endpoint on loopback."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from clients.publish import add_arguments, describe_event, main
from server.media.types import InitSegment
from tests.clients.test_publisher import KEY, FakeIngest, fragments, running


def test_describe_event() -> None:
    tally = {"type": "tally", "on_air": True, "stage": "main"}
    assert describe_event(tally, was_on_air=None) == "tally: ON AIR (stage main)"
    assert describe_event(tally, was_on_air=True) is None
    preview = {"type": "tally", "on_air": False, "preview": True, "stage": "main"}
    assert describe_event(preview, was_on_air=True) == "tally: preview (a producer is watching) (stage main)"
    assert describe_event(preview, was_on_air=False, was_preview=True) is None
    stats = {"type": "stats", "bitrate": 1_020_000, "fragment_age": 0.21, "viewers": 12}
    assert describe_event(stats, was_on_air=True) == "stats: 1.02 Mbit/s, fragment age 0.21 s, 12 viewers"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="forumcast publish")
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args("--input", "x", "--key", "k")) == 2
    assert "FILE or --test-pattern" in capsys.readouterr().err
    assert main(_args("--input", "x", "--key", "k", "f.mp4", "--test-pattern")) == 2
    assert main(_args("--input", "x", "--key", "k", str(tmp_path / "missing.mp4"))) == 2
    assert "no such file" in capsys.readouterr().err


async def test_cli_publishes_the_test_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    async with running(FakeIngest()) as ingest:
        server = ingest.url.removesuffix("/ws/publish/stern-uk").replace("ws://", "http://")
        args = _args(
            "--server",
            server,
            "--input",
            "stern-uk",
            "--key",
            KEY,
            "--test-pattern",
            "--duration",
            "0.8",
            "--size",
            "320x180",
            "--gop",
            "5",
        )
        assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    assert f"publishing to {ingest.url}" in out
    assert "tally: ON AIR (stage main)" in out
    assert "; stopped" in out
    (received,) = ingest.connections
    assert isinstance(received.items[0], InitSegment)
    assert received.items[0].video is not None
    assert len(fragments(received)) >= 2
    assert fragments(received)[0].keyframe


async def test_cli_with_two_servers_moves_on_to_the_second(capsys: pytest.CaptureFixture[str]) -> None:
    first, second = FakeIngest(close_after={1: (2, 1001, None)}), FakeIngest()
    async with running(first), running(second):
        servers = [
            i.url.removesuffix("/ws/publish/stern-uk").replace("ws://", "http://") for i in (first, second)
        ]
        argv = ["--input", "stern-uk", "--key", KEY, "--test-pattern", "--duration", "1.5"]
        argv += ["--size", "320x180", "--gop", "5", "--server", servers[0], "--server", servers[1]]
        assert await asyncio.to_thread(main, _args(*argv)) == 0
    out = capsys.readouterr().out
    assert f"publishing to {first.url} (then {second.url})" in out
    assert f"server going away (scripted); reconnecting to {second.url} in 0.0 s" in out
    assert f"; stopped (last server {second.url})" in out
    (moved,) = second.connections
    assert moved.path == "/ws/publish/stern-uk?takeover=1"
    assert len(fragments(moved)) >= 1
