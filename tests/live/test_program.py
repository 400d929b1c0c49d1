"""A stage program end to end: real publishers, takes, the schedule on a fast clock,
failover by killing and stalling publishers, failback; the recorded program is checked."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from server.clock import ManualClock
from server.http.keys import STREAM_KEYS
from server.media.types import TrackKind
from tests.conftest import Serve, at, auth, ffmpeg
from tests.live.streams import LoopPublisher, ProgramRecorder, clip, segments, track_start

FRAME = Fraction(1, 25)


async def take(client: Any, source: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/stages/main/take", json={"input": source, **extra}, headers=auth("producer", "main")
    )
    body = await response.json()
    assert response.status == 200, body
    return body["program"]


async def resume(client: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/stages/main/auto", headers=auth("producer", "main"))
    assert response.status == 200
    return (await response.json())["program"]


def switch_counts(metrics: str) -> dict[str, float]:
    found = re.findall(r'forumcast_program_switches_total\{reason="(\w+)",stage="main"\} (\S+)', metrics)
    return {reason: float(value) for reason, value in found}


def check_recording(recorder: ProgramRecorder, tmp_path: Path) -> list[str]:
    """Everything the issue asks of a recorded program; returns the sources in order."""
    parts = segments(recorder)
    assert parts and parts[0].event == "init"
    ends: dict[TrackKind, Fraction] = {}
    for index, part in enumerate(parts):
        # Each re-init really changed what the decoder must know; each part starts decodable.
        if index:
            assert part.event == "reinit"
            assert part.init.signature() != parts[index - 1].init.signature(), "a needless re-init"
        assert part.fragments[0].keyframe, f"part {index} starts without a keyframe"
        path = tmp_path / f"part{index}.mp4"
        path.write_bytes(part.init.data + b"".join(f.data for f in part.fragments))
        run = subprocess.run(
            [ffmpeg(), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
        )
        assert run.returncode == 0 and not run.stderr.strip(), f"part {index}: {run.stderr}"
        for fragment in part.fragments:
            video = track_start(fragment, part.init, TrackKind.VIDEO)
            audio = track_start(fragment, part.init, TrackKind.AUDIO)
            if video is not None and audio is not None:
                assert abs(video - audio) <= FRAME, f"A/V apart by {float(video - audio) * 1000:.0f} ms"
            for traf in fragment.tracks:
                track = part.init.track(traf.track_id)
                assert track is not None
                begin = Fraction(traf.base_decode_time, track.timescale)
                if track.kind in ends:
                    gap = begin - ends[track.kind]
                    assert 0 <= gap <= FRAME, (
                        f"{track.kind.value}: {float(gap) * 1000:.1f} ms gap at part {index}"
                    )
                ends[track.kind] = begin + Fraction(traf.duration, track.timescale)
    return [e["program"]["source"] for e in recorder.events("now")]


async def test_twenty_switches_keep_one_decodable_program(serve: Serve, tmp_path: Path) -> None:
    clock = ManualClock(at("2020-12-06T08:50:00+08:00"), rate=1.0)  # before the opening: the slate
    client = await serve(clock=clock, failback_after=1.0)
    keys = client.app[STREAM_KEYS]
    base = f"ws://127.0.0.1:{client.port}"

    def url(input_id: str) -> str:
        return f"{base}/ws/publish/{input_id}?key={keys.key(input_id)}&takeover=1"

    # Two inputs: 0.5 s GOPs 320x180 AAC, and 1 s GOPs 256x144 Opus.
    cam = LoopPublisher(url("main-cam"), clip("CAM", 320, 180, 12, "aac"))
    uk = LoopPublisher(url("stern-uk"), clip("UK", 256, 144, 25, "opus"))
    viewer = ProgramRecorder(await client.ws_connect("/ws/watch/main"))
    viewer.start()
    try:
        await viewer.wait_source("slate")
        await cam.start()
        await uk.start()
        await asyncio.sleep(0.6)

        clock.set(at("2020-12-06T09:00:00+08:00"))  # 1 opening: main-cam (schedule)
        await viewer.wait_source("main-cam")
        for source in ("stern-uk", "main-cam", "slate", "stern-uk"):  # 2-5 manual
            await take(client, source)
            await viewer.wait_source(source)
        program = await take(client, "main-cam", cut="cached")  # 6 manual, at once
        assert program["source"] == "main-cam" and program["mode"] == "manual"
        await viewer.wait_source("main-cam")
        await take(client, "stern-uk")  # 7
        await viewer.wait_source("stern-uk")
        assert (await resume(client))["mode"] == "auto"  # 8 back to the schedule: main-cam
        await viewer.wait_source("main-cam")

        clock.set(at("2020-12-06T10:00:00+08:00"))  # 9 keynote: stern-uk (schedule)
        await viewer.wait_source("stern-uk")
        await asyncio.sleep(0.5)
        killed = time.monotonic()
        await uk.kill()  # 10 failover to the backup, main-cam
        arrived = await viewer.wait_source("main-cam")
        assert arrived - killed <= 1.0 + 0.2, f"failover took {arrived - killed:.2f} s"
        await uk.restart()  # 11 failback once stable for 1 s
        await viewer.wait_source("stern-uk")
        uk.stall()  # 12 a stall: failover after stall_after (1 s)
        stalled = time.monotonic()
        arrived = await viewer.wait_source("main-cam")
        assert 1.0 <= arrived - stalled <= 1.0 + 0.2 + 0.2, f"stall failover took {arrived - stalled:.2f} s"
        uk.resume()  # 13 failback
        await viewer.wait_source("stern-uk")
        await cam.kill()
        await asyncio.sleep(0.3)
        await uk.kill()  # 14 backup down too: the slate
        await viewer.wait_source("slate")
        await uk.restart()  # 15 failback from the slate
        await viewer.wait_source("stern-uk")
        await cam.restart()

        clock.set(at("2020-12-06T11:00:00+08:00"))  # 16 keynote over: the slate
        await viewer.wait_source("slate")
        clock.set(at("2020-12-06T14:00:00+08:00"))  # 17 afternoon names no input: the stage's first
        await viewer.wait_source("main-cam")
        await take(client, "stern-uk")  # 18
        await viewer.wait_source("stern-uk")
        await take(client, "slate")  # 19
        await viewer.wait_source("slate")
        await resume(client)  # 20
        await viewer.wait_source("main-cam")
        await asyncio.sleep(0.5)

        assert viewer.closed is None, f"the viewer was disconnected: {viewer.closed}"
        metrics = await (await client.get("/metrics")).text()
        # Schedule: the first slate, 1, 8 (auto), 9, 16, 17, 20; manual: 2-7, 18, 19.
        assert switch_counts(metrics) == {"schedule": 7.0, "manual": 8.0, "failover": 3.0, "failback": 3.0}
        assert 'forumcast_program_source{source="main-cam",stage="main"} 1.0' in metrics
        assert 'forumcast_program_source{source="stern-uk",stage="main"} 0.0' in metrics
        # Tally followed: stern-uk's publisher was told it went off air at the end.
        assert uk.tallies()[-1]["on_air"] is False and cam.tallies()[-1]["on_air"] is True
    finally:
        await viewer.stop()
        for publisher in (cam, uk):
            await publisher.kill()
    # (A viewer that connects in the first instant, before the slate is encoded, is told
    # that nothing is on yet: source None.)
    sources = [s for s in check_recording(viewer, tmp_path) if s is not None]
    changes = [s for i, s in enumerate(sources) if i == 0 or s != sources[i - 1]]
    assert len(changes) == 21, changes  # the first slate and twenty switches
    # Every source differs from the last in its decoder configuration here, so every switch
    # is one re-init, and each part started with a keyframe (checked above).
    assert len(segments(viewer)) == 21
