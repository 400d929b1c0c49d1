"""``forumcast watch --hls`` against the real server on loopback: parts, switches, latency, the
recording, closed stages, the CLI; and its playlist reader on the packager's own playlists."""

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
from clients.hls_probe import HlsProbe, parse_media_playlist, parse_multivariant
from clients.watch import add_arguments, main, watch_hls
from server.clock import ManualClock
from server.media.hls import Packager
from server.media.types import InitSegment
from tests.conftest import TOKENS, Serve, at
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


# --- the playlist reader and the probe on the packager's playlists, without a server --------

INDEX = "http://h/live/main/index.m3u8?sid=s"
MEDIA = "http://h/live/main/media.m3u8?sid=s"


@pytest.fixture(scope="module")
def packager() -> Packager:
    """A packager (12 segments kept, so delta updates skip some) fed 3 s of one pattern, a
    re-init, then 15 s of another."""
    from clients.source import split
    from server.encoding.testpattern import PatternSettings, encode_clip

    packager = Packager(prefix="e/", window=12)
    first = split(encode_clip("a", 3.0, PatternSettings(width=320, height=180, gop=25, preset="ultrafast")))
    second = split(encode_clip("b", 3.0, PatternSettings(width=256, height=144, gop=25, preset="ultrafast")))
    fragments = [(first.init, f) for f in first.fragments] + [(second.init, f) for f in second.fragments * 5]
    init: InitSegment | None = None
    for number, (fragment_init, fragment) in enumerate(fragments):
        if fragment_init is not init:
            init = fragment_init
            packager.set_init(init)
        packager.add(fragment, wall_time=1_000.0 + number * 0.2)
    return packager


def _number(uri: str, kind: str) -> int:
    return int(uri.split(f"/{kind}/")[1].split(".")[0])


def test_the_reader_reads_the_packagers_playlists(packager: Packager) -> None:
    variants = parse_multivariant(packager.multivariant_playlist(query="sid=s"), INDEX)
    assert [v.uri for v in variants] == [MEDIA]
    assert variants[0].codecs is not None and variants[0].resolution == "256x144"

    full = parse_media_playlist(packager.media_playlist(query="sid=s"), MEDIA)
    assert full.can_block_reload and full.part_target == pytest.approx(0.2)
    assert full.can_skip_until == 12 and full.part_hold_back == pytest.approx(0.6)
    msns = [s.msn for s in full.segments]
    assert msns == list(range(full.media_sequence, full.media_sequence + len(msns)))
    assert full.segments[-1].parts and not full.segments[-1].complete  # the one being made
    assert all(s.complete for s in full.segments[:-1])
    assert full.preload_hint == f"http://h/live/main/e/part/{packager.next_part_number}.m4s?sid=s"
    assert {s.map_uri for s in full.segments} == {
        "http://h/live/main/e/init/1.mp4?sid=s",
        "http://h/live/main/e/init/2.mp4?sid=s",
    }
    assert sum(s.discontinuity for s in full.segments) == 1
    assert all(s.date is not None for s in full.segments)

    # A delta update: the skipped segments are counted, the map in force carries over.
    delta = parse_media_playlist(packager.media_playlist(query="sid=s", skip=True), MEDIA)
    assert delta.skipped > 0
    assert delta.segments[0].msn == full.media_sequence + delta.skipped
    assert [s.msn for s in delta.segments] == msns[delta.skipped :]
    probe = HlsProbe(MEDIA, started=0.0)
    probe.on_playlist(full)
    probe.on_playlist(delta)
    assert all(s.map_uri is not None for s in delta.segments)


def test_the_probe_takes_every_part_in_order_across_a_switch(packager: Packager) -> None:
    full = parse_media_playlist(packager.media_playlist(query="sid=s"), MEDIA)
    probe = HlsProbe(MEDIA, started=0.0)
    probe.on_playlist(full)
    # It joins at the newest independent part.
    newest = full.segments[-1]
    assert probe.position == (newest.msn, max(i for i, p in enumerate(newest.parts) if p.independent))

    probe.position = (full.segments[0].msn, 0)  # from the oldest instead, to cross the switch
    fetched: list[int] = []
    while (fetch := probe.next_fetch()) is not None:
        if fetch.map_uri is not None:
            probe.on_map(packager.inits[_number(fetch.map_uri, "init")].data)
        part = packager.part(_number(fetch.uri, "part"))
        assert part is not None
        probe.on_media(fetch, part.data, mono=1.0, wall=2_000.0)
        fetched.append(part.number)
    first = full.segments[0].parts[0]
    assert fetched == list(range(_number(first.uri, "part"), packager.next_part_number))
    # Nothing more listed: a blocking reload for the next part, as a delta update.
    assert probe.reload_query() == {
        "_HLS_msn": str(newest.msn),
        "_HLS_part": str(len(newest.parts)),
        "_HLS_skip": "YES",
    }
    report = probe.finish(now=2.0)
    assert report.switches == 1 and report.new_maps == 1 and report.discontinuities == 1, report
    assert report.segments == len(full.segments) - 1  # all but the one being made
    assert report.errors == [] and report.init_offsets[0] == 0 and len(report.init_offsets) == 2
