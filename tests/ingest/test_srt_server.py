"""SRT publishers end to end: ffmpeg over SRT into a real server, one program switched between
an RTMP, an SRT and a WebSocket input and recorded, HEVC over both protocols, passphrases, and
every refusal an SRT caller can meet."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from pathlib import Path
from typing import Any

from server.clock import ManualClock
from server.http.keys import INGEST, STREAM_KEYS
from server.media.fmp4 import Fmp4Parser
from server.media.types import InitSegment, MediaFragment
from server.schedule.yaml_format import load_yaml
from tests.conftest import Serve, at, auth, ffmpeg
from tests.ingest.rtmp_publishers import FfmpegPublisher, rtmp_url
from tests.ingest.srt_support import free_udp_port, library, srt_live_transmit_caller, srt_url
from tests.ingest.test_rtmp_server import inputs, wait_up
from tests.live.streams import LoopPublisher, ProgramRecorder, clip
from tests.live.test_program import check_recording, take
from tests.support.metrics_text import value
from tests.support.redis_server import free_port

PASSPHRASE = "forum-passphrase-2020"
TAKES = ("srt-cam", "ws-cam", "rtmp-cam", "srt-cam", "slate", "ws-cam", "srt-cam", "rtmp-cam")


def three_input_event(tmp_path: Path) -> Any:
    text = """
event: {id: gear, title: {zh: 设备, en: Gear}, timezone: Asia/Shanghai}
venues: [{id: sz, name: {zh: 深圳, en: Shenzhen}, timezone: Asia/Shanghai, city: Shenzhen}]
stages:
  - id: main
    title: {zh: 主论坛, en: Main Forum}
    kind: main
    venue: sz
    inputs:
      - {id: rtmp-cam, title: OBS over RTMP, kind: camera}
      - {id: srt-cam, title: Encoder over SRT, kind: camera}
      - {id: ws-cam, title: Browser over WebSocket, kind: remote}
sessions:
  - {id: day, stage: main, title: {zh: 全天, en: All day}, start: 2020-12-06T09:00:00+08:00,
     end: 2020-12-06T18:00:00+08:00, input: rtmp-cam}
"""
    path = tmp_path / "gear.yaml"
    path.write_text(text, encoding="utf-8")
    return load_yaml(path)


def srt_publisher(
    port: int, streamid: str, profile: str = "gop_half", **options: str | int
) -> FfmpegPublisher:
    return FfmpegPublisher(srt_url(port, streamid, **options), profile, seconds=60, fmt="mpegts")


async def test_program_switched_between_rtmp_srt_and_websocket_inputs(serve: Serve, tmp_path: Path) -> None:
    library()
    clock = ManualClock(at("2020-12-06T08:50:00+08:00"), rate=1.0)
    rtmp_port, srt_port = free_port(), free_udp_port()
    client = await serve(
        event=three_input_event(tmp_path), clock=clock, rtmp_port=rtmp_port, srt_port=srt_port
    )
    assert sorted(s.protocol for s in client.app[INGEST]) == ["rtmp", "srt"]
    keys = client.app[STREAM_KEYS]
    rtmp = FfmpegPublisher(rtmp_url(rtmp_port, "rtmp-cam", keys.key("rtmp-cam")), "bframes_aac", seconds=60)
    srt = srt_publisher(srt_port, f"#!::r=srt-cam,k={keys.key('srt-cam')}")  # unencrypted
    ws = LoopPublisher(
        f"ws://127.0.0.1:{client.port}/ws/publish/ws-cam?key={keys.key('ws-cam')}",
        clip("WS", 256, 144, 25, "aac"),
    )
    viewer = ProgramRecorder(await client.ws_connect("/ws/watch/main"))
    viewer.start()
    try:
        await viewer.wait_source("slate")
        await ws.start()
        assert (await wait_up(client, "rtmp-cam"))["publisher"]["kind"] == "rtmp"
        found = await wait_up(client, "srt-cam")
        assert found["publisher"]["kind"] == "srt" and found["gop_seconds"] == 0.48
        assert [t["codec"][:4] for t in found["tracks"]] == ["avc1", "mp4a"] and found["warnings"] == []
        clock.set(at("2020-12-06T09:00:00+08:00"))  # the session: rtmp-cam (schedule)
        await viewer.wait_source("rtmp-cam")
        for source in TAKES:
            await take(client, source)
            await viewer.wait_source(source)
            await asyncio.sleep(0.4)
        assert viewer.closed is None, f"the viewer was disconnected: {viewer.closed}"
    finally:
        await viewer.stop()
        await ws.kill()
        rtmp.stop()
        srt.stop()
    shown = [s for s in check_recording(viewer, tmp_path) if s is not None]
    sources = [source for source, _ in itertools.groupby(shown)]  # (a repeated now event)
    assert sources == ["slate", "rtmp-cam", *TAKES]


async def record_preview(
    client: Any, input_id: str, seconds: float
) -> tuple[InitSegment, list[MediaFragment]]:
    """A producer's preview of one input for ``seconds``: its init and fragments."""
    parser, init, fragments = Fmp4Parser(), None, []
    ws = await client.ws_connect(f"/ws/watch/input/{input_id}", headers=auth("producer"))
    try:
        async with asyncio.timeout(seconds + 5):
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            while loop.time() < end:
                message = await ws.receive()
                if isinstance(message.data, bytes):
                    for item in parser.feed(message.data):
                        if isinstance(item, InitSegment):
                            init, fragments = item, []
                        else:
                            fragments.append(item)
    finally:
        await ws.close()
    assert init is not None
    return init, fragments


def probe(path: Path) -> str:
    run = subprocess.run(
        [ffmpeg(), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr
    return run.stderr


async def test_hevc_over_enhanced_rtmp_and_over_srt(serve: Serve, tmp_path: Path) -> None:
    library()
    rtmp_port, srt_port = free_port(), free_udp_port()
    client = await serve(event=three_input_event(tmp_path), rtmp_port=rtmp_port, srt_port=srt_port)
    keys = client.app[STREAM_KEYS]
    rtmp = FfmpegPublisher(rtmp_url(rtmp_port, "rtmp-cam", keys.key("rtmp-cam")), "hevc", seconds=60)
    srt = srt_publisher(srt_port, keys.key("srt-cam"), "hevc")  # a bare key names its input
    try:
        for input_id, protocol in (("rtmp-cam", "rtmp"), ("srt-cam", "srt")):
            found = await wait_up(client, input_id, timeout=30)
            assert found["publisher"]["kind"] == protocol
            assert [t["codec"][:4] for t in found["tracks"]] == ["hvc1", "mp4a"], found["tracks"]
            init, fragments = await record_preview(client, input_id, 2.0)
            assert b"hvcC" in init.data and len(fragments) >= 5
            start = next(i for i, f in enumerate(fragments) if f.keyframe)
            path = tmp_path / f"{input_id}.mp4"
            path.write_bytes(init.data + b"".join(f.data for f in fragments[start:]))
            probe(path)  # ffmpeg decodes the hvcC fragments without an error
    finally:
        rtmp.stop()
        srt.stop()


async def test_passphrase_and_every_refusal_an_srt_caller_meets(serve: Serve, tmp_path: Path) -> None:
    library()
    srt_port = free_udp_port()
    client = await serve(
        event=three_input_event(tmp_path), rtmp_port=0, srt_port=srt_port, srt_passphrase=PASSPHRASE
    )
    keys = client.app[STREAM_KEYS]
    good = srt_publisher(
        srt_port, f"#!::r=srt-cam,k={keys.key('srt-cam')}", passphrase=PASSPHRASE, pbkeylen=32
    )
    try:
        assert (await wait_up(client, "srt-cam"))["publisher"]["kind"] == "srt"
        refusals = {
            "live.bad_key": f"#!::r=ws-cam,k={'0' * 32}",
            "live.unknown_input": f"#!::r=nowhere,k={keys.key('ws-cam')}",
            "live.input_busy": f"#!::r=srt-cam,k={keys.key('srt-cam')}",
            "srt.bad_streamid": "#!::r=ws-cam",
        }
        for code, streamid in refusals.items():
            status, printed = await FfmpegPublisher(
                srt_url(srt_port, streamid, passphrase=PASSPHRASE), seconds=3, fmt="mpegts"
            ).finish()
            assert status != 0 and "reject" in printed.lower(), (code, printed)
        # A wrong passphrase and none: libsrt itself refuses after our admission.
        for options in ({"passphrase": "not-the-passphrase"}, {}):
            status, printed = await FfmpegPublisher(
                srt_url(srt_port, f"#!::r=ws-cam,k={keys.key('ws-cam')}", **options), seconds=3, fmt="mpegts"
            ).finish()
            assert status != 0, printed
        # Garbage instead of MPEG-TS (srt-live-transmit sends whatever it reads): media.bad_ts.
        # (srt-live-transmit does not decode %-escapes in its URL: the bare key form here.)
        caller = await srt_live_transmit_caller(srt_port, keys.key("ws-cam"), passphrase=PASSPHRASE)
        await caller.wait_for_line("SRT target connected")
        await caller.feed(bytes(range(256)) * 200)
        async with asyncio.timeout(10):
            while "media.bad_ts" not in await (await client.get("/metrics")).text():
                await asyncio.sleep(0.1)
        await caller.interrupt()
        refusals["media.bad_ts"] = ""
        metrics = await (await client.get("/metrics")).text()
        for code in refusals:
            assert value(metrics, "forumcast_publisher_refused_total", protocol="srt", code=code) == 1, code
        now = await inputs(client)
        assert now["srt-cam"]["up"] and now["ws-cam"]["publisher"] is None  # the good one never noticed
        assert value(metrics, "forumcast_publisher_connections", protocol="srt") == 1
    finally:
        good.stop()
