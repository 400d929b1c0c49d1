"""The lean watch viewer of ``forumcast loadtest``: a hand-written WebSocket client.

It is built to cost far less CPU than the server it loads, so that the server is what gets
measured. :class:`Viewer` is an :class:`asyncio.BufferedProtocol`: every socket reads into one
shared buffer (no ``bytes`` object per read), frames are walked by their headers and payloads
are skipped, except the first bytes of each message (:mod:`clients.loadtest_frames` reads
them). Per viewer it keeps the time to first fragment and the gaps in the ``mfhd`` sequence
numbers (drops); every viewer of a run adds its counters and the ``prft`` key and arrival of
each live fragment to one :class:`Run`.

A connection goes through the :class:`ViewerState` states in order: the HTTP upgrade, the
open WebSocket, our close sent (waiting for the server's answer), done.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import json
import os
import time
from array import array
from collections import Counter

from clients.loadtest_frames import PREFIX, client_frame, fragment_marks, frame_header, ntp_to_unix

#: Bytes of a text message kept (JSON events are small; only errors are looked at).
TEXT_PREFIX = 4096
#: Latency samples kept (16 bytes each); later ones are counted but not kept.
MAX_SAMPLES = 4_000_000
#: Seconds to wait for the server's close replies at the end before aborting.
CLOSE_TIMEOUT = 2.0

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# One read buffer for every socket: the loop calls buffer_updated() right after recv_into(),
# before any other protocol gets the buffer, and each protocol copies what it keeps.
_BUFFER = bytearray(256 * 1024)
_BUFFER_VIEW = memoryview(_BUFFER)


class ViewerState(enum.Enum):
    HANDSHAKE = enum.auto()
    OPEN = enum.auto()
    CLOSING = enum.auto()
    DONE = enum.auto()


class Run:
    """What all viewers of one run share: counters and the latency samples."""

    def __init__(self) -> None:
        self.viewers: list[Viewer] = []
        self.messages = self.bytes = self.inits = self.fragments = self.texts = 0
        self.drops = self.unparsed = self.not_kept = 0
        self.errors: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        self.keys = array("Q")  # prft NTP timestamp of each live fragment received
        self.arrivals = array("d")  # its arrival (Unix time)
        self.closed = asyncio.Event()  # set whenever a viewer's connection ends

    def sample(self, key: int, wall: float) -> None:
        if len(self.keys) < MAX_SAMPLES:
            self.keys.append(key)
            self.arrivals.append(wall)
        else:
            self.not_kept += 1


class Viewer(asyncio.BufferedProtocol):
    """One watch WebSocket: handshake, then server frames walked header by header."""

    def __init__(self, run: Run, request: bytes, accept: bytes, *, probe: bool) -> None:
        self.run = run
        self.request = request
        self.accept = accept
        self.probe = probe  # a probe join: leaves after its first fragment
        self.transport: asyncio.Transport | None = None
        self.state = ViewerState.HANDSHAKE
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.connected = asyncio.get_running_loop().create_future()
        self.head = bytearray()  # the handshake response so far
        self.partial = b""  # an incomplete frame header
        self.remaining = 0  # payload bytes of the current frame still to come
        self.frame_first = 0  # first header byte of the current frame
        self.fin = True
        self.message_kind = 0  # opcode of the current data message (1 text, 2 binary)
        self.keep = bytearray()  # its first bytes
        self.keep_left = 0
        self.control = bytearray()  # payload of the current control frame
        self.last_sequence = -1
        self.inits = 0
        self.fragments = 0
        self.drops = 0
        self.ttff: float | None = None
        self.last_media = 0.0
        self.end = ""  # how the connection ended, when the server ended it

    # --- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _BUFFER_VIEW

    def buffer_updated(self, nbytes: int) -> None:
        self.run.bytes += nbytes
        if self.state is ViewerState.HANDSHAKE:
            self._handshake(bytes(_BUFFER[:nbytes]))
        else:
            self._frames(_BUFFER, 0, nbytes, time.time())

    def eof_received(self) -> bool:
        self.end = self.end or "eof"
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state is ViewerState.HANDSHAKE:
            self.fail("closed during handshake" if exc is None else f"handshake: {exc}")
        elif self.state is ViewerState.OPEN and not self.probe:
            self.run.disconnects[self.end or (f"lost: {exc}" if exc else "closed")] += 1
        self.state = ViewerState.DONE
        self.run.closed.set()

    # --- handshake -------------------------------------------------------------------------

    def _handshake(self, data: bytes) -> None:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > 16384:
                self.fail("handshake: response header too long")
            return
        head, rest = bytes(self.head[:end]).lower(), bytes(self.head[end + 4 :])
        self.head = bytearray()
        status = head.split(b"\r\n", 1)[0].split(b" ")
        if len(status) < 2 or status[1] != b"101":
            self.fail(f"http {status[1].decode(errors='replace') if len(status) > 1 else '?'}")
            return
        if b"sec-websocket-accept: " + self.accept.lower() not in head:
            self.fail("handshake: bad Sec-WebSocket-Accept")
            return
        self.state = ViewerState.OPEN
        if not self.connected.done():
            self.connected.set_result(True)
        if rest:
            self._frames(rest, 0, len(rest), time.time())

    def fail(self, reason: str) -> None:
        """The connection could not be made: count ``reason`` and hang up (no-op once open)."""
        if self.state is not ViewerState.HANDSHAKE:
            return
        self.state = ViewerState.DONE
        self.run.failed[reason] += 1
        if not self.connected.done():
            self.connected.set_result(False)
        if self.transport is not None:
            self.transport.abort()

    # --- frames ----------------------------------------------------------------------------

    def _frames(self, data: bytes | bytearray, pos: int, end: int, wall: float) -> None:
        while pos < end:
            if self.remaining:
                take = min(self.remaining, end - pos)
                if self.frame_first & 0x08:  # a control frame (≤ 125 bytes)
                    self.control += data[pos : pos + take]
                elif self.keep_left:
                    kept = min(take, self.keep_left)
                    self.keep += data[pos : pos + kept]
                    self.keep_left -= kept
                pos += take
                self.remaining -= take
                if not self.remaining:
                    self._frame_end(wall)
                continue
            stop = min(pos + 14, end)  # never past what this read brought (the buffer is shared)
            head = self.partial + data[pos:stop] if self.partial else data[pos:stop]
            parsed = frame_header(head)
            if parsed is None:
                self.partial = bytes(head)
                return
            size, first, length = parsed
            pos += size - len(self.partial)
            self.partial = b""
            self.frame_first = first
            opcode = first & 0x0F
            if opcode & 0x08:
                self.control = bytearray()
            elif opcode:  # a new data message (0 is a continuation of the current one)
                self.message_kind = opcode
                self.keep = bytearray()
                self.keep_left = PREFIX if opcode == 2 else TEXT_PREFIX
            self.fin = bool(first & 0x80)
            self.remaining = length
            if not length:
                self._frame_end(wall)
            if self.state is ViewerState.DONE:
                return

    def _frame_end(self, wall: float) -> None:
        opcode = self.frame_first & 0x0F
        if opcode & 0x08:
            self._control(opcode)
        elif self.fin:
            self._message(wall)

    def _control(self, opcode: int) -> None:
        transport = self.transport
        if opcode == 0x9 and transport is not None and not transport.is_closing():  # ping
            transport.write(client_frame(0xA, bytes(self.control[:125])))
        elif opcode == 0x8:  # close: answer it (unless it answers ours) and hang up
            code = int.from_bytes(self.control[:2], "big") if len(self.control) >= 2 else 1005
            if self.state is ViewerState.OPEN:
                self.end = f"close {code}"
                if transport is not None and not transport.is_closing():
                    transport.write(client_frame(0x8, code.to_bytes(2, "big")))
            if transport is not None:
                transport.close()

    def _message(self, wall: float) -> None:
        run = self.run
        run.messages += 1
        keep = self.keep
        if self.message_kind == 1:
            run.texts += 1
            if b'"error"' in keep:
                try:
                    run.errors[str(json.loads(keep).get("code"))] += 1
                except (ValueError, AttributeError):
                    run.errors["?"] += 1
            return
        if keep[4:8] == b"ftyp":
            run.inits += 1
            self.inits += 1
            return
        run.fragments += 1
        self.fragments += 1
        self.last_media = wall
        ntp, sequence = fragment_marks(keep)
        if self.fragments == 1:
            self.ttff = (time.monotonic() - self.started) * 1000
            if self.probe:
                self.close()
                return
        if sequence < 0:
            run.unparsed += 1
        else:
            last = self.last_sequence
            if last >= 0 and sequence > last + 1:
                self.drops += sequence - last - 1
                run.drops += sequence - last - 1
            self.last_sequence = sequence
        if ntp and ntp_to_unix(ntp) >= self.started_wall:  # live, not the cached GOP of the join
            run.sample(ntp, wall)

    def close(self) -> None:
        """Start the closing handshake (the server answers, then we hang up)."""
        transport = self.transport
        if self.state is ViewerState.HANDSHAKE:
            self.state = ViewerState.DONE
            if transport is not None:
                transport.abort()
            return
        if self.state is not ViewerState.OPEN or transport is None:
            return
        self.state = ViewerState.CLOSING
        if transport.is_closing():
            return
        transport.write(client_frame(0x8, (1000).to_bytes(2, "big")))


def handshake_request(host: str, port: int, target: str) -> tuple[bytes, bytes]:
    """The upgrade request for ``target`` and the ``Sec-WebSocket-Accept`` the server must answer."""
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324 (RFC 6455)
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
        "User-Agent: forumcast-loadtest\r\n\r\n"
    ).encode()
    return request, accept


async def close_all(run: Run, viewers: list[Viewer]) -> None:
    """Close every viewer: the closing handshake for :data:`CLOSE_TIMEOUT` seconds, then abort."""
    for viewer in viewers:
        viewer.close()
    limit = time.monotonic() + CLOSE_TIMEOUT
    while (
        any(v.state is not ViewerState.DONE and v.transport is not None for v in viewers)
        and time.monotonic() < limit
    ):
        run.closed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.closed.wait(), max(0.01, limit - time.monotonic()))
    for viewer in viewers:
        if viewer.state is not ViewerState.DONE and viewer.transport is not None:
            viewer.state = ViewerState.DONE
            viewer.transport.abort()
    await asyncio.sleep(0)  # let the aborted transports call connection_lost
