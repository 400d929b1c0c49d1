"""``forumcast loadtest``: many watch WebSockets from one lean process, for the relay benchmark.

One asyncio process opens ``--viewers`` connections to ``/ws/watch/{stage}`` (``--ramp-per-second``
of them per second), keeps them for ``--duration`` seconds in all, then closes them and reports.
It is built to cost far less CPU than the server it loads, so that the server is what gets
measured (its own CPU time is in the report, to check that):

- a hand-written WebSocket client on :class:`asyncio.BufferedProtocol`: every socket reads into
  one shared buffer (no ``bytes`` object per read), frames are walked by their headers and
  payloads are skipped, except the first :data:`PREFIX` bytes of a binary message;
- of a media message (``[styp] [prft] [emsg] moof mdat``) only the top-level box headers of
  that prefix are read: the ``prft``'s NTP timestamp and the ``mfhd`` sequence number (the
  first box inside the ``moof``). Nothing is decoded.

Per viewer it measures the **time to first fragment** (connection start to the end of the first
media message) and **drops** (gaps in the ``mfhd`` sequence numbers, which the server numbers
consecutively). Per fragment it keeps the arrival wall time and the ``prft`` key, so that at
the end:

- **latency** = arrival − the ``prft`` time (the publisher's wall clock when the fragment's
  first frame entered the encoder: it includes the fragment's own duration and the encoder);
- **added latency** (with ``--sent-log``) = arrival − the moment the publisher handed that
  fragment to its socket, read from a log of ``NTP_KEY SEND_WALL_TIME`` lines the benchmark's
  publisher writes: what the relay (and loopback) add, the figure a relay target is about.

Only *live* fragments count: those produced after the viewer connected (the burst of the
cached GOP at join is as old as the cache and says nothing about the relay; TTFF covers it).
Percentiles are given for the steady phase (from one second after the last viewer joined)
and for the ramp. ``--joins K`` adds K short-lived probe viewers spread over the steady
phase: each connects, waits for its first fragment and leaves — the time to first fragment
of a new viewer at full load.

Load tests target loopback only (the server address must resolve to loopback) and are
bounded: at most :data:`MAX_VIEWERS` viewers, at most :data:`MAX_DURATION` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import resource
import socket
import struct
import sys
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clients.connection import DEFAULT_SERVER, ClientError, watch_url
from clients.probe import percentile

#: Bytes of each binary message kept for parsing: room for styp + prft + a small emsg + the
#: moof header and its mfhd.
PREFIX = 256
#: Bytes of a text message kept (JSON events are small; only errors are looked at).
TEXT_PREFIX = 4096
#: A viewer that received no fragment for this long at the end is not counted as held.
HELD_WINDOW = 2.0
#: Seconds after the last viewer joined before the steady phase starts.
SETTLE = 1.0
MAX_VIEWERS = 20_000
MAX_DURATION = 3600.0
#: Latency samples kept (16 bytes each); later ones are counted but not kept.
MAX_SAMPLES = 4_000_000
CONNECT_TIMEOUT = 10.0
#: Seconds to wait for the server's close replies at the end before aborting.
CLOSE_TIMEOUT = 2.0

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HANDSHAKE, _OPEN, _CLOSING, _DONE = range(4)
# One read buffer for every socket: the loop calls buffer_updated() right after recv_into(),
# before any other protocol gets the buffer, and each protocol copies what it keeps.
_BUFFER = bytearray(256 * 1024)
_BUFFER_VIEW = memoryview(_BUFFER)


def ntp_to_unix(ntp: int) -> float:
    """A 64-bit NTP timestamp (32.32 fixed point since 1900) as Unix seconds."""
    return ntp / 2**32 - NTP_UNIX_OFFSET


def fragment_marks(prefix: bytes | bytearray) -> tuple[int, int]:
    """The ``prft`` NTP timestamp (0 if none) and the ``mfhd`` sequence number (-1 if not
    found) of a media message, from its first bytes: top-level box headers up to the moof."""
    ntp, sequence, offset, end = 0, -1, 0, len(prefix)
    while offset + 8 <= end:
        size = _U32.unpack_from(prefix, offset)[0]
        kind = prefix[offset + 4 : offset + 8]
        if kind == b"moof":
            if offset + 24 <= end and prefix[offset + 12 : offset + 16] == b"mfhd":
                sequence = _U32.unpack_from(prefix, offset + 20)[0]
            break
        if kind == b"prft" and offset + 24 <= end:
            ntp = _U64.unpack_from(prefix, offset + 16)[0]  # after version/flags and track id
        if size < 8:
            break
        offset += size
    return ntp, sequence


def _frame_header(data: bytes | bytearray) -> tuple[int, int, int] | None:
    """``(header length, first byte, payload length)`` of a server frame, ``None`` if incomplete."""
    if len(data) < 2:
        return None
    second = data[1]
    length = second & 0x7F
    size = 2
    if length == 126:
        size = 4
        if len(data) < size:
            return None
        length = int.from_bytes(data[2:4], "big")
    elif length == 127:
        size = 10
        if len(data) < size:
            return None
        length = int.from_bytes(data[2:10], "big")
    if second & 0x80:
        size += 4  # a masked server frame breaks the protocol, but its key can be skipped
        if len(data) < size:
            return None
    return size, data[0], length


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payload ≤ 125 bytes). The all-zero mask leaves the bytes as they are."""
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


# --- what is measured -----------------------------------------------------------------------------


@dataclass(slots=True)
class Stats:
    count: int = 0
    p50: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        if not values:
            return cls()
        return cls(
            count=len(values),
            p50=_round(percentile(values, 0.50)),
            p99=_round(percentile(values, 0.99)),
            max=_round(max(values)),
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(slots=True)
class LoadReport:
    url: str = ""
    viewers: int = 0  # asked for
    ramp_per_second: float = 0.0
    duration_s: float = 0.0
    started: float = 0.0  # Unix time the first connection attempt began
    ramp_done_s: float | None = None  # seconds from start until the last viewer's handshake ended
    connected: int = 0  # handshakes that succeeded (viewers only, not probe joins)
    failed: dict[str, int] = field(default_factory=dict)  # connection failures by reason
    open_at_end: int = 0
    held: int = 0  # open at the end and receiving (a fragment in the last HELD_WINDOW seconds)
    viewers_with_media: int = 0  # got an init segment and at least one fragment
    min_fragments: int = 0  # fewest fragments one viewer got
    disconnects: dict[str, int] = field(default_factory=dict)  # server-side ends, by close code
    messages: int = 0
    bytes: int = 0
    inits: int = 0
    fragments: int = 0
    texts: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # "error" events by code
    drops: int = 0  # fragments missing from the mfhd sequence, all viewers
    viewers_with_drops: int = 0
    unparsed: int = 0  # media messages without a readable mfhd
    ttff_ms: Stats = field(default_factory=Stats)  # every viewer, during the ramp
    join_ttff_ms: Stats = field(default_factory=Stats)  # probe joins at full load
    joins: int = 0
    latency_ms: Stats = field(default_factory=Stats)  # arrival − prft, steady phase
    added_latency_ms: Stats | None = None  # arrival − publisher send, steady phase
    ramp_latency_ms: Stats = field(default_factory=Stats)
    ramp_added_latency_ms: Stats | None = None
    unmatched: int = 0  # samples whose prft is not in the sent log
    samples_not_kept: int = 0
    cpu_user_s: float = 0.0
    cpu_system_s: float = 0.0
    cpu_percent: float = 0.0  # of one core, over the run
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        def stats(name: str, value: Stats | None) -> str:
            if value is None or not value.count:
                return f"  {name:<22} -"
            return f"  {name:<22} p50 {value.p50} / p99 {value.p99} / max {value.max} ms ({value.count})"

        lines = [
            f"loadtest {self.url}: {self.viewers} viewers at {self.ramp_per_second:g}/s"
            f" for {self.duration_s:g} s",
            f"  connected              {self.connected}"
            + (f"  failed {self.failed}" if self.failed else "")
            + (f"  (ramp done at {self.ramp_done_s:.1f} s)" if self.ramp_done_s is not None else ""),
            f"  held at the end        {self.held} (open {self.open_at_end})"
            + (f"  disconnects {self.disconnects}" if self.disconnects else ""),
            stats("time to first frag.", self.ttff_ms),
            stats(f"join TTFF ({self.joins})", self.join_ttff_ms),
            stats("latency (prft)", self.latency_ms),
            stats("added latency", self.added_latency_ms),
            stats("ramp added latency", self.ramp_added_latency_ms),
            f"  fragments              {self.fragments}"
            f" ({self.bytes / 1e6:.1f} MB, {self.messages} messages)",
            f"  drops                  {self.drops} ({self.viewers_with_drops} viewers)",
            f"  load generator CPU     {self.cpu_percent:.1f} % of a core"
            f" (user {self.cpu_user_s:.2f} s, system {self.cpu_system_s:.2f} s)",
        ]
        if self.errors:
            lines.append(f"  error events           {self.errors}")
        return "\n".join(lines)


class _Run:
    """What all viewers of one run share: counters and the latency samples."""

    def __init__(self) -> None:
        self.viewers: list[_Viewer] = []
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


class _Viewer(asyncio.BufferedProtocol):
    """One watch WebSocket: handshake, then server frames walked header by header."""

    def __init__(self, run: _Run, request: bytes, accept: bytes, *, probe: bool) -> None:
        self.run = run
        self.request = request
        self.accept = accept
        self.probe = probe  # a probe join: leaves after its first fragment
        self.transport: asyncio.Transport | None = None
        self.state = _HANDSHAKE
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
        if self.state == _HANDSHAKE:
            self._handshake(bytes(_BUFFER[:nbytes]))
        else:
            self._frames(_BUFFER, 0, nbytes, time.time())

    def eof_received(self) -> bool:
        self.end = self.end or "eof"
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state == _HANDSHAKE:
            self._fail("closed during handshake" if exc is None else f"handshake: {exc}")
        elif self.state == _OPEN and not self.probe:
            self.run.disconnects[self.end or (f"lost: {exc}" if exc else "closed")] += 1
        self.state = _DONE
        self.run.closed.set()

    # --- handshake -------------------------------------------------------------------------

    def _handshake(self, data: bytes) -> None:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > 16384:
                self._fail("handshake: response header too long")
            return
        head, rest = bytes(self.head[:end]).lower(), bytes(self.head[end + 4 :])
        self.head = bytearray()
        status = head.split(b"\r\n", 1)[0].split(b" ")
        if len(status) < 2 or status[1] != b"101":
            self._fail(f"http {status[1].decode(errors='replace') if len(status) > 1 else '?'}")
            return
        if b"sec-websocket-accept: " + self.accept.lower() not in head:
            self._fail("handshake: bad Sec-WebSocket-Accept")
            return
        self.state = _OPEN
        if not self.connected.done():
            self.connected.set_result(True)
        if rest:
            self._frames(rest, 0, len(rest), time.time())

    def _fail(self, reason: str) -> None:
        if self.state != _HANDSHAKE:
            return
        self.state = _DONE
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
            parsed = _frame_header(head)
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
            if self.state == _DONE:
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
            transport.write(_client_frame(0xA, bytes(self.control[:125])))
        elif opcode == 0x8:  # close: answer it (unless it answers ours) and hang up
            code = int.from_bytes(self.control[:2], "big") if len(self.control) >= 2 else 1005
            if self.state == _OPEN:
                self.end = f"close {code}"
                if transport is not None and not transport.is_closing():
                    transport.write(_client_frame(0x8, code.to_bytes(2, "big")))
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
        if self.state == _HANDSHAKE:
            self.state = _DONE
            if transport is not None:
                transport.abort()
            return
        if self.state != _OPEN or transport is None:
            return
        self.state = _CLOSING
        if transport.is_closing():
            return
        transport.write(_client_frame(0x8, (1000).to_bytes(2, "big")))


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadSettings:
    url: str  # ws://host:port/ws/watch/{stage}[?token=...]
    viewers: int
    ramp_per_second: float = 500.0
    duration: float = 30.0
    joins: int = 0
    sent_log: Path | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.viewers <= MAX_VIEWERS:
            raise ValueError(f"viewers must be 1..{MAX_VIEWERS}, not {self.viewers}")
        if not 0 < self.duration <= MAX_DURATION:
            raise ValueError(f"duration must be in (0, {MAX_DURATION:g}] seconds, not {self.duration}")
        if self.ramp_per_second <= 0:
            raise ValueError("ramp-per-second must be positive")
        if not 0 <= self.joins <= 10_000:
            raise ValueError("joins must be 0..10000")


def _target(url: str) -> tuple[str, int, str]:
    """Host, port and request target of a ``ws://`` URL whose host is a loopback address."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise ClientError(f"loadtest needs a ws:// (or http://) loopback server, not {url!r}")
    port = parts.port or 80
    try:
        addresses = {
            str(info[4][0]) for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        }
    except OSError as exc:
        raise ClientError(f"cannot resolve {parts.hostname!r}: {exc}") from exc
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ClientError(f"loadtest targets loopback only; {parts.hostname!r} is not a loopback address")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, target


def _request(host: str, port: int, target: str) -> tuple[bytes, bytes]:
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324 (RFC 6455)
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
        "User-Agent: forumcast-loadtest\r\n\r\n"
    ).encode()
    return request, accept


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def read_sent_log(path: Path) -> dict[int, float]:
    """``NTP_KEY SEND_WALL_TIME`` lines (the benchmark publisher's) as a mapping."""
    sent: dict[int, float] = {}
    with path.open() as file:
        for line in file:
            key, _, when = line.partition(" ")
            with contextlib.suppress(ValueError):
                sent[int(key)] = float(when)
    return sent


async def run_load(settings: LoadSettings) -> LoadReport:
    """Run one bounded load test; never raises for what the server does (it is in the report)."""
    host, port, target = _target(settings.url)
    _raise_open_files(settings.viewers + settings.joins + 256)
    loop = asyncio.get_running_loop()
    run = _Run()
    report = LoadReport(
        url=settings.url.split("?", 1)[0],
        viewers=settings.viewers,
        ramp_per_second=settings.ramp_per_second,
        duration_s=settings.duration,
    )
    probes: list[_Viewer] = []

    async def connect(probe: bool) -> None:
        request, accept = _request(host, port, target)
        viewer = _Viewer(run, request, accept, probe=probe)
        (probes if probe else run.viewers).append(viewer)
        try:
            await asyncio.wait_for(loop.create_connection(lambda: viewer, host, port), CONNECT_TIMEOUT)
            await asyncio.wait_for(asyncio.shield(viewer.connected), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            viewer._fail(
                f"connect: {type(exc).__name__}" + (f" {exc.errno}" if isinstance(exc, OSError) else "")
            )

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    report.started = time.time()
    deadline = start + settings.duration
    tasks: set[asyncio.Task[None]] = set()

    def spawn(probe: bool) -> None:
        task = loop.create_task(connect(probe))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        for index in range(settings.viewers):
            due = start + index / settings.ramp_per_second
            if due >= deadline:
                break
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            spawn(False)
        while tasks and time.monotonic() < deadline:
            await asyncio.wait(set(tasks), timeout=deadline - time.monotonic())
        if not tasks:
            report.ramp_done_s = time.monotonic() - start
        if settings.joins:
            first = time.monotonic() + SETTLE
            step = max(0.0, deadline - 0.5 - first) / settings.joins
            for index in range(settings.joins):
                due = first + index * step
                if due >= deadline - 0.25:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                spawn(True)
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        after = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.time()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        report.wall_s = time.monotonic() - start
        report.open_at_end = sum(v.state == _OPEN for v in run.viewers)
        report.held = sum(v.state == _OPEN and wall - v.last_media <= HELD_WINDOW for v in run.viewers)
        await _close_all(run, [*run.viewers, *probes])
    report.cpu_user_s = round(after.ru_utime - before.ru_utime, 3)
    report.cpu_system_s = round(after.ru_stime - before.ru_stime, 3)
    report.cpu_percent = round((report.cpu_user_s + report.cpu_system_s) / max(report.wall_s, 1e-9) * 100, 1)
    _summarise(report, run, probes, settings)
    return report


async def _close_all(run: _Run, viewers: list[_Viewer]) -> None:
    for viewer in viewers:
        viewer.close()
    limit = time.monotonic() + CLOSE_TIMEOUT
    while any(v.state != _DONE and v.transport is not None for v in viewers) and time.monotonic() < limit:
        run.closed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.closed.wait(), max(0.01, limit - time.monotonic()))
    for viewer in viewers:
        if viewer.state != _DONE and viewer.transport is not None:
            viewer.state = _DONE
            viewer.transport.abort()
    await asyncio.sleep(0)  # let the aborted transports call connection_lost


def _summarise(report: LoadReport, run: _Run, probes: list[_Viewer], settings: LoadSettings) -> None:
    viewers = run.viewers
    report.connected = sum(v.connected.done() and v.connected.result() for v in viewers)
    report.failed = dict(run.failed)
    report.disconnects = dict(run.disconnects)
    report.messages, report.bytes, report.inits = run.messages, run.bytes, run.inits
    report.fragments, report.texts, report.errors = run.fragments, run.texts, dict(run.errors)
    report.drops, report.unparsed = run.drops, run.unparsed
    report.viewers_with_drops = sum(v.drops > 0 for v in viewers)
    report.viewers_with_media = sum(v.inits > 0 and v.fragments > 0 for v in viewers)
    report.min_fragments = min((v.fragments for v in viewers), default=0)
    report.ttff_ms = Stats.of([v.ttff for v in viewers if v.ttff is not None])
    report.joins = len(probes)
    report.join_ttff_ms = Stats.of([v.ttff for v in probes if v.ttff is not None])
    report.samples_not_kept = run.not_kept
    steady_from = (
        report.started + report.ramp_done_s + SETTLE if report.ramp_done_s is not None else float("inf")
    )
    latency: tuple[list[float], list[float]] = ([], [])  # ramp, steady
    for key, arrival in zip(run.keys, run.arrivals, strict=True):
        latency[arrival >= steady_from].append((arrival - ntp_to_unix(key)) * 1000)
    report.ramp_latency_ms, report.latency_ms = Stats.of(latency[0]), Stats.of(latency[1])
    if settings.sent_log is not None:
        sent = read_sent_log(settings.sent_log) if settings.sent_log.exists() else {}
        added: tuple[list[float], list[float]] = ([], [])
        for key, arrival in zip(run.keys, run.arrivals, strict=True):
            when = sent.get(key)
            if when is None:
                report.unmatched += 1
            else:
                added[arrival >= steady_from].append((arrival - when) * 1000)
        report.ramp_added_latency_ms, report.added_latency_ms = Stats.of(added[0]), Stats.of(added[1])


# --- the command --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``forumcast loadtest --stage ID --viewers N [--ramp-per-second R] [--duration S] [--json]``."""
    parser.add_argument(
        "--server",
        default=os.environ.get("FORUMCAST_SERVER", DEFAULT_SERVER),
        help=f"server address, loopback only (default $FORUMCAST_SERVER or {DEFAULT_SERVER})",
    )
    parser.add_argument("--stage", required=True, help="the stage whose program the viewers watch")
    parser.add_argument("--viewers", type=int, required=True, metavar="N", help=f"1..{MAX_VIEWERS}")
    parser.add_argument(
        "--ramp-per-second", type=float, default=500.0, metavar="R", help="new viewers per second (500)"
    )
    parser.add_argument(
        "--duration", type=float, default=30.0, metavar="S", help="seconds in all, ramp included (30)"
    )
    parser.add_argument(
        "--joins", type=int, default=20, metavar="K", help="probe viewers joining at full load (20)"
    )
    parser.add_argument(
        "--token", default=os.environ.get("FORUMCAST_TOKEN"), help="invitation (closed stage)"
    )
    parser.add_argument(
        "--sent-log",
        type=Path,
        metavar="FILE",
        help="the publisher's 'NTP_KEY SEND_TIME' lines: report the latency the relay adds",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def main(args: argparse.Namespace) -> int:
    """Run ``forumcast loadtest``: 0 when viewers got media, 1 when none did, 2 for a usage problem."""
    try:
        settings = LoadSettings(
            url=watch_url(args.server, stage=args.stage, token=args.token),
            viewers=args.viewers,
            ramp_per_second=args.ramp_per_second,
            duration=args.duration,
            joins=args.joins,
            sent_log=args.sent_log,
        )
        report = asyncio.run(run_load(settings))
    except (ClientError, ValueError) as exc:
        print(f"forumcast loadtest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.describe(), flush=True)
    return 0 if report.fragments else 1


def _standalone(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="forumcast loadtest", description="many watch WebSockets from one lean process"
    )
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(_standalone())
