"""``forumcast watch --hls`` against the real server on loopback: parts, switches, latency, the
recording, closed stages, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import imageio_ffmpeg
import pytest

from clients.connection import ClientError, hls_url
from clients.watch import add_arguments, main, watch_hls
from server.clock import ManualClock
from tests.conftest import TOKENS, Serve, at
from tests.live.test_hls_viewers import hls_viewers
from tests.web.test_pages import MORNING
from tests.web.test_switching_playback import MAIN_CAM, STERN_UK, publishing, take, wait_up


def decode_errors(path: Path) -> str:
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stderr


async def test_watch_hls_follows_a_stage_through_program_switches(serve: Serve, tmp_path: Path) -> None:
    """Two live test patterns of other sizes and audio codecs: every take is a discontinuity
    and a new EXT-X-MAP; the probe gets every part in order, from blocking reloads."""
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    record = tmp_path / "main.mp4"
    async with publishing(client, "main-cam", MAIN_CAM), publishing(client, "stern-uk", STERN_UK):
        await wait_up(client, "main", "main-cam", "stern-uk")
        stop = asyncio.Event()
        url = hls_url(f"http://127.0.0.1:{client.port}", stage="main")
        watching = asyncio.create_task(watch_hls(url, record=record, stop=stop))
        await asyncio.sleep(3)  # stern-uk: the keynote's input, on air by the schedule
        await take(client, "main", "main-cam")
        await asyncio.sleep(3)
        await take(client, "main", "stern-uk")
        await asyncio.sleep(3)
        stop.set()
        report = await watching

    print(report.describe())  # -s
    assert not report.refused and report.closed == "stopped", report.closed
    assert report.errors == []
    assert report.target_duration == 2 and report.part_target == pytest.approx(0.2)
    assert report.variant is not None and "avc1" in report.variant
    # About 9 s of 200 ms parts, every one of them, none lost, none fetched twice.
    assert report.parts >= 35, report.parts
    assert report.drops == 0 and report.resyncs == 0
    assert report.media_seconds == pytest.approx(report.parts * 0.2, abs=0.5)
    assert report.segments >= 2  # whole segments, first part to last
    # Both takes seen, each as a discontinuity with a new init (other size, other codecs).
    assert report.switches == 2, report.switch_log
    assert report.discontinuities == 2 and report.new_maps == 2, report.switch_log
    # Blocking reloads, not polling: about one playlist per part, none timed out.
    assert report.reloads <= report.parts + 5, (report.reloads, report.parts)
    assert report.reload_timeouts == 0
    # Latency from the parts' prft (the publisher's clock): a part's duration, plus a little.
    assert report.latency_samples >= report.parts - 10
    assert report.prft_latency_p50_ms is not None and report.prft_latency_p99_ms is not None
    assert 150 < report.prft_latency_p50_ms <= report.prft_latency_p99_ms < 2000, report
    # And from EXT-X-PROGRAM-DATE-TIME. The packager keeps the dates from going back at a
    # switch, so they run ahead of the media's prft by what each switch added (a few hundred
    # ms here; reported to the server side): only bounded here, not yet "about a part".
    assert report.latency_p50_ms is not None and report.pdt_ahead_ms is not None
    assert abs(report.latency_p50_ms) < 2000 and abs(report.pdt_ahead_ms) < 2000, report
    assert report.ttff_ms is not None and report.ttff_ms < 2000
    assert report.mime is not None and "opus" in report.mime  # stern-uk's, at the end

    # The recording: each init segment where it came, then the parts; cut at the inits,
    # every piece decodes without an error.
    data = record.read_bytes()
    assert len(data) == report.bytes
    assert len(report.init_offsets) == 3 and report.init_offsets[0] == 0
    cuts = [*report.init_offsets, len(data)]
    for number, (start, end) in enumerate(itertools.pairwise(cuts)):
        assert data[start + 4 : start + 8] == b"ftyp"
        piece = tmp_path / f"piece-{number}.mp4"
        piece.write_bytes(data[start:end])
        assert decode_errors(piece) == "", number


async def test_watch_hls_counts_as_one_viewer_while_it_runs(serve: Serve) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0), hls_target_duration=1.0)
    stop = asyncio.Event()
    url = hls_url(f"http://127.0.0.1:{client.port}", stage="main")
    watching = asyncio.create_task(watch_hls(url, stop=stop))
    counts = []
    for _ in range(8):  # 4 s: two heartbeat intervals of 2 s
        await asyncio.sleep(0.5)
        counts.append(await hls_viewers(client.app))
    stop.set()
    report = await watching
    assert not report.refused and report.parts > 0, report
    assert counts[1:] == [1] * 7, counts  # from its first heartbeat on
    await asyncio.sleep(6.5)  # three intervals without a heartbeat: gone
    assert await hls_viewers(client.app) == 0


async def test_watch_hls_needs_the_invitation_of_a_closed_stage(serve: Serve) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    server = f"http://127.0.0.1:{client.port}"
    refused = await watch_hls(hls_url(server, stage="closed"), duration=5)
    assert refused.refused and refused.parts == 0
    assert refused.closed.startswith("not authorised") or refused.closed.startswith("forbidden"), refused
    assert "auth." in refused.closed

    invitation = TOKENS.issue("viewer:closed", ttl=timedelta(hours=1), subject="test")
    admitted = await watch_hls(hls_url(server, stage="closed", token=invitation), duration=2)
    # Nobody publishes: the stage's slate, as parts like any other program.
    assert not admitted.refused and admitted.closed == "duration reached", admitted
    assert admitted.parts >= 5 and admitted.errors == []
    assert invitation not in admitted.url  # the token stays out of the report
    assert await hls_viewers(client.app, "closed") == 1  # its heartbeats carried the token


async def test_watch_hls_of_an_unknown_stage_or_no_server() -> None:
    report = await watch_hls("http://127.0.0.1:9/live/main/index.m3u8", duration=5)
    assert report.refused and report.closed.startswith("cannot connect")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="forumcast watch")
    add_arguments(parser)
    return parser.parse_args(list(argv))


async def test_cli_watch_hls(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    server = f"http://127.0.0.1:{client.port}"
    args = ("--server", server, "--stage", "main", "--hls", "--duration", "1.5")
    assert await asyncio.to_thread(main, _args(*args, "--json")) == 0
    assert await asyncio.to_thread(main, _args(*args)) == 0
    assert await asyncio.to_thread(main, _args("--server", server, "--stage", "nope", "--hls")) == 1
    assert main(_args("--server", server, "--input", "main-cam", "--hls")) == 2
    captured = capsys.readouterr()
    summary = json.loads(captured.out[: captured.out.index("}\n") + 1])
    assert summary["parts"] > 0 and summary["drops"] == 0
    assert set(summary) >= {"latency_p50_ms", "switches", "segments", "reloads", "init_offsets"}
    assert f"watched {server}/live/main/index.m3u8 (HLS)" in captured.out
    assert "switches" in captured.out
    assert "no such input or stage" in captured.out  # the unknown stage
    assert "--hls watches a stage" in captured.err


def test_hls_url() -> None:
    assert hls_url("127.0.0.1:8080", stage="main") == "http://127.0.0.1:8080/live/main/index.m3u8"
    assert hls_url("wss://example.org/fc/", stage="a b", token="t") == (
        "https://example.org/fc/live/a%20b/index.m3u8?token=t"
    )
    with pytest.raises(ClientError):
        hls_url("http://x", stage=None)
