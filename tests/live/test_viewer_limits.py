"""Viewers who cannot hurt the others: one that never reads is reset within ``max_behind`` and
pins little kernel memory meanwhile; one address, and one instance, hold a bounded number of
viewer connections."""

from __future__ import annotations

import asyncio
import base64
import os
import select
import socket
import time
from typing import Any

import aiohttp
import pytest

from server.encoding.testpattern import PatternSettings, encode_clip
from server.http.keys import LIVE, STREAM_KEYS
from server.media.fmp4 import split_clip
from tests.conftest import Serve, main_cam_on_air
from tests.live.streams import LoopPublisher

MAX_BEHIND = 5.0
#: A 1 Mbit/s picture: what a non-reading viewer would otherwise pile up, 125 kB each second.
BUSY = PatternSettings(width=640, height=360, gop=25, bitrate=1_000_000, preset="ultrafast", busy=True)


def tcp_memory() -> tuple[int, int]:
    """The host's TCP memory (bytes, both ends of every loopback socket) and orphan sockets."""
    with open("/proc/net/sockstat") as sockstat:
        for line in sockstat:
            if line.startswith("TCP:"):
                fields = line.split()
                pages = int(fields[fields.index("mem") + 1])
                return pages * os.sysconf("SC_PAGE_SIZE"), int(fields[fields.index("orphan") + 1])
    raise AssertionError("no TCP line in /proc/net/sockstat")


def upgrade_request(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def non_reader(port: int) -> socket.socket:
    """A viewer that asks for the stage and then never reads a byte (a small receive buffer:
    what it stops taking shows at the server at once)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 2**10)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    sock.send(upgrade_request("/ws/watch/main"))
    return sock


def was_reset(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLERR | select.POLLHUP | select.POLLRDHUP)
    return any(event & (select.POLLERR | select.POLLHUP | select.POLLRDHUP) for _, event in poller.poll(0))


async def test_viewers_that_never_read_are_reset_and_pin_little_kernel_memory(serve: Serve) -> None:
    client = await serve(clock=main_cam_on_air(), max_behind=MAX_BEHIND, max_viewers_per_ip=1000)
    key = client.app[STREAM_KEYS].key("main-cam")
    cam = LoopPublisher(
        f"ws://127.0.0.1:{client.port}/ws/publish/main-cam?key={key}",
        split_clip(encode_clip("CAM", 4.0, BUSY)),
    )
    await cam.start()
    reader = await client.ws_connect("/ws/watch/main")
    program = client.app[LIVE].programs["main"]
    try:
        for _ in range(100):
            if program.source == "main-cam":
                break
            await asyncio.sleep(0.1)
        baseline, _ = tcp_memory()
        started = time.monotonic()
        sockets = [await non_reader(client.port) for _ in range(300)]
        peak, reset_at = 0, {}
        received = 0
        while len(reset_at) < len(sockets) and time.monotonic() - started < MAX_BEHIND + 10:
            memory, _ = tcp_memory()
            peak = max(peak, memory - baseline)
            for index, sock in enumerate(sockets):
                if index not in reset_at and was_reset(sock):
                    reset_at[index] = time.monotonic() - started
            while True:  # the reading viewer keeps up meanwhile
                try:
                    message = await reader.receive(timeout=0.01)
                except TimeoutError:
                    break
                received += message.type is aiohttp.WSMsgType.BINARY
            await asyncio.sleep(0.05)
        assert len(reset_at) == 300, f"{300 - len(reset_at)} non-readers still connected"
        assert max(reset_at.values()) <= MAX_BEHIND + 2.0
        assert min(reset_at.values()) >= MAX_BEHIND  # not before they were behind for max_behind
        assert peak < 64 * 2**20, f"{peak / 2**20:.1f} MiB of TCP memory above the baseline"
        for sock in sockets:
            sock.close()  # what the clients still held unread
        await asyncio.sleep(0.5)
        after, orphans = tcp_memory()
        assert orphans == 0 and after - baseline < 4 * 2**20  # reset, nothing left to linger
        assert received >= (MAX_BEHIND + 1) * 4  # 200 ms fragments kept coming to the reader
        assert not reader.closed and program.viewer_count == 1
        metrics = await (await client.get("/metrics")).text()
        assert 'forumcast_relay_stalled_viewers_total{stage="main"} 300.0' in metrics
    finally:
        await reader.close()
        await cam.kill()


@pytest.mark.parametrize(
    ("limits", "status", "code"),
    [
        ({"max_viewers_per_ip": 3}, 429, "live.too_many_connections"),
        ({"max_viewers": 3}, 503, "live.full"),
    ],
)
async def test_viewer_connections_are_bounded_per_address_and_in_total(
    serve: Serve, limits: dict[str, Any], status: int, code: str
) -> None:
    client = await serve(clock=main_cam_on_air(), **limits)
    viewers = [await client.ws_connect("/ws/watch/main") for _ in range(3)]
    refused = await client.get("/ws/watch/main", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    body = await refused.json()
    assert refused.status == status and body["error"]["code"] == code
    assert (await client.get("/api/v1/stages/main")).status == 200  # the rest still answers
    await viewers.pop().close()
    for _ in range(50):  # the server sees the close
        if client.app[LIVE].admission.count == 2:
            break
        await asyncio.sleep(0.02)
    viewers.append(await client.ws_connect("/ws/watch/main"))  # a place came free
    metrics = await (await client.get("/metrics")).text()
    assert f'forumcast_viewer_refusals_total{{reason="{code}"}} 1.0' in metrics
    for viewer in viewers:
        await viewer.close()
