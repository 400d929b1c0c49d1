"""Production gear in a cluster: an RTMP and an SRT publisher on one instance, their program
watched on another through Redis, like any publisher's."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import aiohttp

from server.media.fmp4 import Fmp4Parser
from server.media.types import InitSegment, MediaFragment
from tests.conftest import ffmpeg
from tests.ingest.rtmp_publishers import FfmpegPublisher, rtmp_url
from tests.ingest.srt_support import free_udp_port, library, srt_url
from tests.support.cluster import Instance, live_event
from tests.support.redis_server import RedisServer, free_port


def wait_for(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


async def watch(url: str, seconds: float) -> tuple[list[str], list[InitSegment | MediaFragment]]:
    """A viewer of stage main on ``url`` for ``seconds``: the sources it was told of and the media."""
    sources: list[str] = []
    items: list[InitSegment | MediaFragment] = []
    parser = Fmp4Parser()
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}/ws/watch/main") as ws:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                message = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if message.type is aiohttp.WSMsgType.TEXT:
                event = message.json()
                if event["type"] == "now":
                    sources.append(event["program"]["source"])
            elif message.type is aiohttp.WSMsgType.BINARY:
                items += parser.feed(message.data)
    return sources, items


def test_rtmp_and_srt_publishers_on_one_instance_watched_on_another(tmp_path: Path) -> None:
    library()
    rtmp_port, srt_port = free_port(), free_udp_port()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    event = live_event(tmp_path / "event.yaml")
    ingest = Instance(
        "a",
        redis.url,
        env={
            "FORUMCAST_EVENT": str(event),
            "FORUMCAST_RTMP_PORT": str(rtmp_port),
            "FORUMCAST_SRT_PORT": str(srt_port),
        },
    )
    edge = Instance("b", redis.url, env={"FORUMCAST_EVENT": str(event)})
    publishers: list[FfmpegPublisher] = []
    try:
        for instance in (ingest, edge):
            instance.start()
        for instance in (ingest, edge):
            instance.wait_ready()
        status, body = edge.get("/api/v1/inputs", role="producer")
        assert status == 200
        keys = {i["id"]: i["stream_key"] for i in body["inputs"]}
        publishers.append(
            FfmpegPublisher(rtmp_url(rtmp_port, "main-cam", keys["main-cam"]), "gop_half", seconds=60)
        )
        publishers.append(
            FfmpegPublisher(
                srt_url(srt_port, f"#!::r=stern-uk,k={keys['stern-uk']}"),
                "gop_half",
                seconds=60,
                fmt="mpegts",
            )
        )

        def both_up() -> bool:
            """Up where they publish, and the edge knows they are on instance a."""
            here = {i["id"]: i for i in ingest.get("/api/v1/inputs", role="producer")[1]["inputs"]}
            there = {i["id"]: i for i in edge.get("/api/v1/inputs", role="producer")[1]["inputs"]}
            return all(
                here[i]["up"] and (there[i]["publisher"] or {}).get("instance") == "a"
                for i in ("main-cam", "stern-uk")
            )

        wait_for(both_up)
        sources, items = asyncio.run(watch(edge.ws, 2.0))
        assert sources and sources[-1] == "main-cam"  # the session's input, published over RTMP on a
        # The producer takes the SRT input (on whichever instance leads the stage).
        status, body = edge.post("/api/v1/stages/main/take", {"input": "stern-uk"})
        assert status == 200, body
        sources, more = asyncio.run(watch(edge.ws, 2.5))
        assert sources[-1] == "stern-uk"
        for name, got in (("rtmp", items), ("srt", more)):
            init = next(i for i in got if isinstance(i, InitSegment))
            fragments = [i for i in got[got.index(init) :] if isinstance(i, MediaFragment)]
            assert len(fragments) >= 5, name
            path = tmp_path / f"{name}.mp4"
            path.write_bytes(init.data + b"".join(f.data for f in fragments))
            run = subprocess.run(
                [ffmpeg(), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True
            )
            assert run.returncode == 0 and not run.stderr, run.stderr
    finally:
        for publisher in publishers:
            publisher.stop()
        for instance in (ingest, edge):
            instance.stop()
        redis.stop()
