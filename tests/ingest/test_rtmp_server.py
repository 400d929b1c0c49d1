"""The RTMP listener end to end: ffmpeg publishing into a real server, the program switched
between an RTMP input and a WebSocket input and recorded, many publishers at once, takeover,
reconnects, and every bad input named in the issue refused on its own."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from server.clock import ManualClock
from server.http.keys import STREAM_KEYS
from server.media.rtmp import messages as m
from server.media.rtmp.handshake import PACKET_SIZE
from server.schedule.yaml_format import load_yaml
from tests.conftest import Serve, at, auth
from tests.ingest.rtmp_publishers import FfmpegPublisher, raw_exchange, rtmp_url
from tests.ingest.srt_support import free_udp_port, library, srt_url
from tests.live.streams import LoopPublisher, ProgramRecorder, clip
from tests.live.test_program import check_recording, take
from tests.media.rtmp.client import AAC_HEADER, AVC_HEADER, AVC_KEYFRAME, Client, commands, server_messages
from tests.support.metrics_text import value
from tests.support.redis_server import free_port


async def inputs(client: Any) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/inputs", headers=auth("producer"))
    assert response.status == 200
    return {i["id"]: i for i in (await response.json())["inputs"]}


async def wait_up(client: Any, input_id: str, timeout: float = 15.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            found = (await inputs(client))[input_id]
            if found["up"] and found["gop_seconds"] is not None and found["frame_rate"]:
                return found
            await asyncio.sleep(0.1)


async def test_program_switched_between_rtmp_and_websocket_inputs(serve: Serve, tmp_path: Path) -> None:
    clock = ManualClock(at("2020-12-06T08:50:00+08:00"), rate=1.0)
    port = free_port()
    client = await serve(clock=clock, rtmp_port=port)
    keys = client.app[STREAM_KEYS]
    rtmp = FfmpegPublisher(rtmp_url(port, "main-cam", keys.key("main-cam")), "bframes_aac", seconds=40)
    ws = LoopPublisher(
        f"ws://127.0.0.1:{client.port}/ws/publish/stern-uk?key={keys.key('stern-uk')}",
        clip("UK", 256, 144, 25, "aac"),
    )
    viewer = ProgramRecorder(await client.ws_connect("/ws/watch/main"))
    viewer.start()
    try:
        await viewer.wait_source("slate")
        await ws.start()
        cam = await wait_up(client, "main-cam")
        assert cam["publisher"]["kind"] == "rtmp" and cam["publisher"]["remote"].startswith("127.0.0.1:")
        assert cam["publisher"]["encoder"].startswith("Lavf")
        assert [t["codec"][:4] for t in cam["tracks"]] == ["avc1", "mp4a"]
        assert cam["tracks"][0]["width"] == 320 and cam["tracks"][0]["height"] == 180
        assert cam["frame_rate"] == pytest.approx(25, abs=0.5)
        assert cam["gop_seconds"] == pytest.approx(1.0, abs=0.05)
        assert cam["bitrate"] > 0
        assert [w["code"] for w in cam["warnings"]] == ["bframes"]

        clock.set(at("2020-12-06T09:00:00+08:00"))  # the opening: main-cam (RTMP)
        await viewer.wait_source("main-cam")
        for source in ("stern-uk", "main-cam", "slate", "main-cam", "stern-uk", "main-cam"):
            await take(client, source)
            await viewer.wait_source(source)
            await asyncio.sleep(0.4)
        # The RTMP publisher reconnects (a new ffmpeg): the program's viewer keeps watching.
        rtmp.stop()
        await asyncio.sleep(0.3)
        rtmp = FfmpegPublisher(rtmp_url(port, "main-cam", keys.key("main-cam")), "bframes_aac", seconds=40)
        await wait_up(client, "main-cam")
        await take(client, "main-cam")
        await viewer.wait_source("main-cam")
        await asyncio.sleep(1.5)
        assert viewer.closed is None, f"the viewer was disconnected: {viewer.closed}"
    finally:
        await viewer.stop()
        await ws.kill()
        rtmp.stop()
    sources = [s for s in check_recording(viewer, tmp_path) if s is not None]
    assert sources[0] == "slate" and sources.count("main-cam") >= 5 and "stern-uk" in sources


def wall_event(tmp_path: Path, count: int) -> Any:
    """An event with one stage of ``count`` camera inputs."""
    lines = [f"      - {{id: cam{n}, title: Camera {n}, kind: camera}}" for n in range(count)]
    text = "\n".join(
        [
            "event: {id: wall, title: {zh: 墙, en: Wall}, timezone: Asia/Shanghai}",
            "venues: [{id: sz, name: {zh: 深圳, en: Shenzhen}, timezone: Asia/Shanghai, city: Shenzhen}]",
            "stages:",
            "  - id: wall",
            "    title: {zh: 墙, en: Wall}",
            "    kind: main",
            "    venue: sz",
            "    inputs:",
            *lines,
            "sessions:",
            "  - {id: s, stage: wall, title: {zh: 会, en: Session}, start: 2020-12-06T09:00:00+08:00,"
            " end: 2020-12-06T18:00:00+08:00}",
        ]
    )
    path = tmp_path / "wall.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    return load_yaml(path)


async def test_ten_rtmp_and_four_srt_publishers_at_once_and_a_takeover(serve: Serve, tmp_path: Path) -> None:
    library()
    port, srt_port, passphrase = free_port(), free_udp_port(), "wall-passphrase-1"
    client = await serve(
        event=wall_event(tmp_path, 14), rtmp_port=port, srt_port=srt_port, srt_passphrase=passphrase
    )
    keys = client.app[STREAM_KEYS]
    profiles = ["bframes_aac", "no_audio", "gop_2s", "gop_half"]
    publishers = {
        f"cam{n}": FfmpegPublisher(
            rtmp_url(port, f"cam{n}", keys.key(f"cam{n}")), profiles[n % 4], seconds=40
        )
        for n in range(10)
    } | {
        f"cam{n}": FfmpegPublisher(
            srt_url(srt_port, f"#!::r=cam{n},k={keys.key(f'cam{n}')}", passphrase=passphrase),
            profiles[n % 4],
            seconds=40,
            fmt="mpegts",
        )
        for n in range(10, 14)
    }
    try:
        seen = {name: await wait_up(client, name, timeout=30) for name in publishers}
        for n, name in enumerate(seen):
            found, profile = seen[name], profiles[n % 4]
            warnings = [w["code"] for w in found["warnings"]]
            assert found["publisher"]["kind"] == ("rtmp" if n < 10 else "srt")
            if profile == "no_audio":
                assert [t["kind"] for t in found["tracks"]] == ["video"] and warnings == ["no_audio"]
            else:
                assert [t["kind"] for t in found["tracks"]] == ["video", "audio"]
            expected_gop = {"gop_2s": 2.0, "gop_half": 0.48}.get(profile, 1.0)
            assert found["gop_seconds"] == pytest.approx(expected_gop, abs=0.05), (name, found["gop_seconds"])
            assert ("bframes" in warnings) == (profile == "bframes_aac"), (name, warnings)
            assert "keyframe_interval" not in warnings  # 2 s is within the 2 s switch budget
        # A second publisher without takeover is refused, with the reason ffmpeg prints.
        intruder = FfmpegPublisher(rtmp_url(port, "cam3", keys.key("cam3")), seconds=5)
        code, printed = await intruder.finish()
        assert code != 0 and "live.input_busy" in printed, printed
        # With takeover=1 it replaces the publisher; the first ffmpeg is cut off.
        first = publishers["cam3"]
        publishers["cam3"] = FfmpegPublisher(rtmp_url(port, "cam3", keys.key("cam3"), takeover=1), seconds=40)
        await asyncio.wait_for(asyncio.to_thread(first.process.wait), 10)
        first.stop()
        await asyncio.sleep(1.0)
        after = (await inputs(client))["cam3"]
        assert after["up"] and after["publisher"]["kind"] == "rtmp"
        now = await inputs(client)
        assert all(now[name]["up"] for name in publishers)
        metrics = await (await client.get("/metrics")).text()
        assert value(metrics, "forumcast_publisher_connections", protocol="rtmp") == 10
        assert value(metrics, "forumcast_publisher_connections", protocol="srt") == 4
        assert (
            value(metrics, "forumcast_publisher_refused_total", protocol="rtmp", code="live.input_busy") == 1
        )
    finally:
        for publisher in publishers.values():
            publisher.stop()


async def test_refusals_ffmpeg_can_show(serve: Serve) -> None:
    port = free_port()
    client = await serve(rtmp_port=port)
    keys = client.app[STREAM_KEYS]
    cases = {
        "live.bad_key": rtmp_url(port, "main-cam", "0" * 32),
        "live.unknown_input": rtmp_url(port, "no-such-cam", keys.key("main-cam")),
        "rtmp.bad_app": f"rtmp://127.0.0.1:{port}/vod/main-cam?key={keys.key('main-cam')}",
    }
    for code, url in cases.items():
        status, printed = await FfmpegPublisher(url, seconds=3).finish()
        assert status != 0 and code in printed, (code, printed)
    # OBS's form: the input in the server URL, the key as the stream name.
    obs = FfmpegPublisher(f"rtmp://127.0.0.1:{port}/live/main-cam/{keys.key('main-cam')}", seconds=30)
    try:
        assert (await wait_up(client, "main-cam"))["publisher"]["kind"] == "rtmp"
    finally:
        obs.stop()
    metrics = await (await client.get("/metrics")).text()
    for code in cases:
        assert value(metrics, "forumcast_publisher_refused_total", protocol="rtmp", code=code) == 1, code
    assert value(metrics, "forumcast_auth_failures_total", kind="stream_key") == 1


def publishing(client_key: str, input_id: str = "main-cam") -> Client:
    """A scripted client up to its publish request (handshake, connect, publish)."""
    client = Client()
    client.connect()
    client.publish_sequence(f"{input_id}?key={client_key}")
    return client


def bad_streams(key: str) -> dict[str, bytes]:
    """code -> a publisher's bytes that must end in that error."""
    garbage = Client()
    garbage.data += b"\xff" * 64  # a chunk header on a chunk stream never started, then junk
    big_chunks = Client()
    big_chunks.send(m.Message(m.SET_CHUNK_SIZE, 0, 0, (2**31).to_bytes(4, "big")))
    huge = Client()
    # A type-0 chunk header announcing a 16 MiB message on chunk stream 3.
    huge.data += bytes([0x03, 0, 0, 0]) + (2**24 - 1).to_bytes(3, "big") + bytes([m.VIDEO, 1, 0, 0, 0])
    bomb = Client()
    deep = b"\x02\x00\x07connect\x00" + bytes(8) + b"\x0a\x00\x00\x00\x01" * 1000 + b"\x05"
    bomb.send(m.Message(m.COMMAND_AMF0, 0, 0, deep), 3)
    truncated = publishing(key)
    truncated.media(m.VIDEO, 0, AVC_HEADER)
    truncated.media(m.VIDEO, 0, b"\x17\x01")  # a coded-frames tag cut before its composition time
    early = publishing(key)
    early.media(m.AUDIO, 0, AAC_HEADER)
    early.media(m.VIDEO, 0, AVC_KEYFRAME)  # no AVC sequence header before it
    return {
        "rtmp.bad_chunk": bytes(garbage.data),
        "rtmp.bad_chunk_size": bytes(big_chunks.data),
        "rtmp.message_too_large": bytes(huge.data),
        "rtmp.amf_too_large": bytes(bomb.data),
        "media.truncated_flv": bytes(truncated.data),
        "media.frame_before_config": bytes(early.data),
    }


async def test_bad_input_closes_only_its_connection(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    client = await serve(rtmp_port=port, ingest_handshake_timeout=1.0)
    keys = client.app[STREAM_KEYS]
    steady = FfmpegPublisher(rtmp_url(port, "stern-uk", keys.key("stern-uk")), "gop_half", seconds=60)
    try:
        await wait_up(client, "stern-uk")
        connects_before = (await inputs(client))["stern-uk"]["publisher"]["seconds"]
        caplog.set_level(logging.WARNING, logger="forumcast.ingest")
        streams = bad_streams(keys.key("main-cam"))
        for code, data in streams.items():
            received, _ = await raw_exchange(port, data)
            assert received[:1] == b"\x03", code  # the handshake was answered, then the close
        # A slowloris: part of C0 C1, then nothing: closed at the deadline, unanswered.
        received, took = await raw_exchange(port, b"\x03" + bytes(100), timeout=5)
        assert 0.9 <= took <= 2.5 and received == b"", took
        # Garbage instead of a handshake.
        received, _ = await raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert received == b""
        codes = [*streams, "ingest.handshake_timeout", "rtmp.bad_handshake"]
        metrics = await (await client.get("/metrics")).text()
        for code in codes:
            assert value(metrics, "forumcast_publisher_refused_total", protocol="rtmp", code=code) == 1, code
            logged = [r for r in caplog.records if f": {code}: " in r.getMessage()]
            assert len(logged) == 1, (code, [r.getMessage() for r in logged])
        # The steady publisher never noticed: still up, same session, its media still fresh.
        after = (await inputs(client))["stern-uk"]
        assert after["up"] and after["publisher"]["seconds"] > connects_before
        assert after["fragment_age"] < 0.5
        assert (await inputs(client))["main-cam"]["publisher"] is None
    finally:
        steady.stop()


async def test_a_refusal_is_an_on_status_error_with_our_code(serve: Serve) -> None:
    port = free_port()
    await serve(rtmp_port=port)
    received, _ = await raw_exchange(port, bytes(publishing("f" * 32).data))
    replies = commands(server_messages(received))
    status = [r for r in replies if r[0] == "onStatus"][-1][3]
    assert status["level"] == "error" and status["code"] == "NetStream.Publish.BadName"
    assert status["description"].startswith("live.bad_key: wrong or missing stream key")
    assert len(received) > 1 + 2 * PACKET_SIZE


async def test_a_reconnect_replaces_a_half_open_connection(serve: Serve) -> None:
    port = free_port()
    client = await serve(rtmp_port=port)
    keys = client.app[STREAM_KEYS]
    # The encoder's first connection: it published, then its link died without a FIN.
    old = publishing(keys.key("main-cam"))
    old.some_media()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(bytes(old.data))
    await writer.drain()
    async with asyncio.timeout(5):
        while (await inputs(client))["main-cam"]["publisher"] is None:
            await asyncio.sleep(0.05)
    # Reconnecting at once, while the old connection still sends: refused, it is not stale.
    status, printed = await FfmpegPublisher(
        rtmp_url(port, "main-cam", keys.key("main-cam")), seconds=2
    ).finish()
    assert status != 0 and "live.input_busy" in printed
    await asyncio.sleep(1.2)  # silent for more than stall_after (1 s)
    again = FfmpegPublisher(rtmp_url(port, "main-cam", keys.key("main-cam")), seconds=30)
    try:
        found = await wait_up(client, "main-cam")
        assert found["publisher"]["kind"] == "rtmp"
        async with asyncio.timeout(5):
            assert await reader.read() is not None  # the old connection was closed by the server
        assert reader.at_eof()
    finally:
        again.stop()
        writer.close()
