"""Test helpers for the SRT layer: the real libsrt (or a failure naming the package), real
callers (ffmpeg of the imageio-ffmpeg wheel, which has libsrt; Debian's srt-live-transmit),
a recorder of what a listener delivers, and TS packet checks."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from server.errors import SrtUnavailable
from server.ingest import srt_lib
from server.ingest.srt_lib import Library
from tests.conftest import ffmpeg

TS_PACKET = 188


def library() -> Library:
    try:
        return srt_lib.load()
    except SrtUnavailable as exc:
        pytest.fail(f"{exc.message} (the test command installs srt-tools)")


def srt_live_transmit() -> str:
    path = shutil.which("srt-live-transmit")
    if path is None:
        pytest.fail("srt-live-transmit is missing: apt-get install srt-tools")
    return path


def free_udp_port() -> int:
    """A loopback UDP port that nothing is bound to right now (racy, as every such probe)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def srt_threads() -> list[str]:
    """Names of this process's native threads that libsrt started (``SRT:RcvQ:w1``…)."""
    names = (Path(task, "comm").read_text().strip() for task in Path("/proc/self/task").iterdir())
    return sorted(name for name in names if name.startswith("SRT:"))


@dataclass
class Recorder:
    """What a listener delivered, in order, and a way to wait for it."""

    events: list[tuple[str, int]] = field(default_factory=list)
    streamids: dict[int, str] = field(default_factory=dict)
    peers: dict[int, str] = field(default_factory=dict)
    data: dict[int, bytearray] = field(default_factory=dict)
    closed: dict[int, str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_open(self, conn: int, streamid: str, peer: str) -> None:
        self.events.append(("open", conn))
        self.streamids[conn] = streamid
        self.peers[conn] = peer
        self.data[conn] = bytearray()
        self.changed.set()

    def on_data(self, conn: int, payload: bytes) -> None:
        if not self.events or self.events[-1] != ("data", conn):
            self.events.append(("data", conn))
        self.data[conn] += payload
        self.changed.set()

    def on_close(self, conn: int, why: str) -> None:
        self.events.append(("close", conn))
        self.closed[conn] = why
        self.changed.set()

    def conn_of(self, streamid: str) -> int:
        (conn,) = [conn for conn, text in self.streamids.items() if text == streamid]
        return conn

    async def wait_for(self, condition: Callable[[], bool], *, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    def in_order(self, conn: int) -> list[str]:
        """This connection's events, repeated data events folded: ``open, data, close``."""
        kinds = [kind for kind, which in self.events if which == conn]
        return [kind for i, kind in enumerate(kinds) if i == 0 or kind != kinds[i - 1]]


def ts_packets(data: bytes) -> int:
    """How many whole TS packets ``data`` holds; fails unless every 188th byte is a sync byte."""
    assert len(data) % TS_PACKET == 0, f"{len(data)} bytes is not a whole number of TS packets"
    bad = [i for i in range(0, len(data), TS_PACKET) if data[i] != 0x47]
    assert not bad, f"{len(bad)} packets without the 0x47 sync byte, first at byte {bad[0]}"
    return len(data) // TS_PACKET


@dataclass
class Caller:
    process: asyncio.subprocess.Process
    stderr_seen: list[str] = field(default_factory=list)

    async def wait_for_line(self, text: str, timeout: float = 15.0) -> None:
        """Read stderr until a line containing ``text`` (kept for :meth:`finish`)."""
        assert self.process.stderr is not None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.process.stderr.readline()).decode(errors="replace")
                assert line, f"stderr ended without {text!r}: {self.stderr_seen}"
                self.stderr_seen.append(line)
                if text in line:
                    return

    async def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        """Wait for the caller to exit: its exit code and stderr."""
        async with asyncio.timeout(timeout):
            _, stderr = await self.process.communicate()
        assert self.process.returncode is not None
        return self.process.returncode, "".join(self.stderr_seen) + stderr.decode(errors="replace")

    async def feed(self, payload: bytes) -> None:
        """Write ``payload`` to stdin at about 10 Mbit/s, then close it: live mode has no flow
        control, and a burst faster than loopback UDP buffers take would be lost."""
        stdin = self.process.stdin
        assert stdin is not None
        for start in range(0, len(payload), 13160):
            stdin.write(payload[start : start + 13160])
            await stdin.drain()
            await asyncio.sleep(0.01)
        stdin.close()

    async def interrupt(self) -> tuple[int, str]:
        if self.process.returncode is None:
            self.process.send_signal(2)  # SIGINT: srt-live-transmit closes its connection cleanly
        return await self.finish()


def srt_url(port: int, streamid: str, **options: str | int) -> str:
    from urllib.parse import quote

    query = "&".join([f"streamid={quote(streamid, safe='')}", *(f"{k}={v}" for k, v in options.items())])
    return f"srt://127.0.0.1:{port}?{query}"


async def ffmpeg_publish(port: int, streamid: str, *, seconds: float = 2.0, **options: str | int) -> Caller:
    """ffmpeg sends ``seconds`` of H.264 test pattern in MPEG-TS, in real time, as an SRT caller."""
    process = await asyncio.create_subprocess_exec(
        *[ffmpeg(), "-hide_banner", "-nostdin", "-re"],
        *["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", str(seconds)],
        *["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"],
        *["-f", "mpegts", srt_url(port, streamid, **options)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return Caller(process)


async def srt_live_transmit_caller(port: int, streamid: str, **options: str | int) -> Caller:
    """srt-live-transmit sending what :meth:`Caller.feed` gives it on stdin, in 1316-byte
    messages. It drops what it reads before it is connected, does not exit at the end of its
    input (interrupt it), and exits 0 when refused."""
    process = await asyncio.create_subprocess_exec(
        *[
            srt_live_transmit(),
            "-a:no",
            "-chunk:1316",
            "-t:30",
            "file://con",
            srt_url(port, streamid, **options),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "LC_ALL": "C"},
    )
    return Caller(process)
