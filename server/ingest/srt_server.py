"""SRT publishers into live inputs: the listener's callbacks, admission and the TS remux chain.

:class:`~server.ingest.srt_listener.SrtListener` owns libsrt and its thread; this module
decides. A caller's ``streamid`` (``#!::r={input},k={key}``, or a bare key that matches
exactly one input's key) is read and admitted before libsrt accepts it, in the listen
callback: the check runs on the event loop (:func:`server.ingest.publisher.admit`: input,
key under the throttle, busy input) and the callback waits for it for at most
:data:`ADMIT_TIMEOUT`. A refusal becomes an SRT rejection whose code is ``1000`` + the
HTTP status of our error code (SRT's ``SRT_REJX_*`` codes follow HTTP's: 1401 a wrong key,
1404 an unknown input, 1409 a busy input, 1429 a throttled client), so the caller's log
shows it; our code and message go to our log. Accepted callers are encrypted with
``srt_passphrase`` when one is configured (libsrt refuses a caller with another or none).

Each accepted connection's MPEG-TS goes through :class:`~server.media.mpegts.TsDemuxer`,
:class:`~server.media.ts_remux.TsToFlv`, an :class:`~server.media.interleave.Interleaver`
(TS muxers let audio trail video by up to 0.7 s) and the FLV remux of a
:class:`~server.ingest.publisher.RemuxedPublisher` (kind ``srt``). Bad media closes that
connection alone (logged once, counted). A connection that sends nothing for
``idle_timeout``, or no init segment within ``handshake_timeout`` of opening, is closed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import logging
from dataclasses import dataclass, field

from server.errors import CODES, ForumcastError
from server.ingest.publisher import IngestEnv, RemuxedPublisher, admit, refused
from server.ingest.srt_listener import Admission, Refusal, SrtListener
from server.ingest.srt_streamid import parse_streamid
from server.live.inputs import LiveInput
from server.media.flv import TagKind
from server.media.interleave import Interleaver
from server.media.mpegts import AAC_ADTS, H264, HEVC, TsDemuxer
from server.media.ts_remux import TsToFlv

log = logging.getLogger("forumcast.ingest")

#: Seconds the listen callback waits for the key check on the loop before refusing.
ADMIT_TIMEOUT = 3.0
#: Seconds between looks for silent connections.
IDLE_CHECK_INTERVAL = 1.0


@dataclass(slots=True)
class _Admitted:
    live: LiveInput
    takeover: bool
    at: float  # when, on the service clock (an admission libsrt then refused is forgotten)


@dataclass(slots=True)
class SrtConnection:
    id: int
    remote: str
    opened: float
    last_data: float
    publisher: RemuxedPublisher | None = None
    demuxer: TsDemuxer = field(default_factory=TsDemuxer)
    converter: TsToFlv = field(default_factory=TsToFlv)
    interleaver: Interleaver = field(default_factory=Interleaver)
    program: frozenset[int] = frozenset()


class SrtServer:
    """The SRT listener on ``port`` and the publishers it feeds."""

    protocol = "srt"

    def __init__(self, env: IngestEnv, *, port: int) -> None:
        self.env = env
        self.connections: dict[int, SrtConnection] = {}
        self._admitted: dict[tuple[str, str], _Admitted] = {}
        self._listener: SrtListener | None = None
        self._port = port
        self._event_loop: asyncio.AbstractEventLoop | None = None

    @property
    def bound_port(self) -> int:
        assert self._listener is not None
        return self._listener.port

    async def start(self) -> None:
        settings = self.env.settings
        self._event_loop = asyncio.get_running_loop()
        self._listener = SrtListener(
            settings.host,
            self._port,
            admit=self._admit_from_thread,
            on_open=self._opened,
            on_data=self._received,
            on_close=self._closed,
            loop=self._event_loop,
            latency_ms=settings.srt_latency_ms,
            max_connections=settings.max_connections,
        )
        await self._listener.start()
        log.info("SRT: listening on %s:%d (UDP)", settings.host, self.bound_port)

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        for connection in list(self.connections.values()):
            self._leave(connection)
        self.connections.clear()

    # -- admission (the listen callback, in libsrt's thread)

    def _admit_from_thread(self, streamid: str, peer: str) -> Admission | Refusal:
        assert self._event_loop is not None
        future = asyncio.run_coroutine_threadsafe(self._admit(streamid, peer), self._event_loop)
        try:
            return future.result(timeout=ADMIT_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return Refusal(1503, "the key check took too long")

    async def _admit(self, streamid: str, peer: str) -> Admission | Refusal:
        try:
            parsed = parse_streamid(streamid)
            if parsed.mode != "publish":
                raise ForumcastError(
                    "srt.bad_streamid", f"m={parsed.mode}: this listener only takes publishers"
                )
            input_id = parsed.resource or self._input_by_key(parsed.key)
            live, takeover = await admit(
                self.env, input_id, parsed.key, client=peer.rpartition(":")[0] or peer, takeover=False
            )
        except ForumcastError as exc:
            refused(self.env, self.protocol, peer, exc)
            return Refusal(1000 + CODES[exc.code].http, f"{exc.code}: {exc.message}")
        now = self.env.clock.monotonic()
        for stale in [k for k, v in self._admitted.items() if now - v.at > ADMIT_TIMEOUT]:
            del self._admitted[stale]  # admitted, then refused by libsrt (a wrong passphrase)
        self._admitted[(streamid, peer)] = _Admitted(live, takeover, now)
        return Admission(passphrase=self.env.settings.srt_passphrase)

    def _input_by_key(self, key: str) -> str:
        """The input whose stream key is ``key`` (a bare-key streamid), compared in constant time."""
        keys = self.env.keys
        found = [i for i in self.env.hub.inputs if hmac.compare_digest(keys.key(i).encode(), key.encode())]
        if len(found) != 1:
            raise ForumcastError("live.bad_key", "no input has this stream key (or use #!::r=INPUT,k=KEY)")
        return found[0]

    # -- connections (on the loop)

    def _opened(self, conn: int, streamid: str, peer: str) -> None:
        now = self.env.clock.monotonic()
        connection = SrtConnection(conn, peer, now, now)
        self.connections[conn] = connection
        self.env.metrics.publisher_connections.labels(protocol=self.protocol).inc()
        admitted = self._admitted.pop((streamid, peer), None)
        try:
            if admitted is None:
                raise ForumcastError("live.bad_key", "the connection was not admitted")
            connection.publisher = RemuxedPublisher(
                self.env,
                admitted.live,
                protocol=self.protocol,
                remote=peer,
                takeover=admitted.takeover,
                kick=lambda code, message: self._kick(conn, message),
            )
        except ForumcastError as exc:
            self._fail(connection, exc)

    def _received(self, conn: int, payload: bytes) -> None:
        connection = self.connections.get(conn)
        if connection is None or connection.publisher is None:
            return
        connection.last_data = self.env.clock.monotonic()
        publisher = connection.publisher
        publisher.received(connection.last_data)
        try:
            for packet in connection.demuxer.feed(payload):
                if packet.program != connection.program:
                    connection.program = packet.program
                    connection.interleaver.expect(_kinds(packet.program))
                for tag in connection.converter.feed(packet):
                    for ordered in connection.interleaver.push(tag):
                        publisher.feed(ordered.kind, ordered.timestamp, ordered.payload)
        except ForumcastError as exc:
            self._fail(connection, exc)

    def _closed(self, conn: int, why: str) -> None:
        connection = self.connections.pop(conn, None)
        if connection is None:
            return
        self.env.metrics.publisher_connections.labels(protocol=self.protocol).dec()
        self._leave(connection)
        log.debug("SRT connection %s from %s closed: %s", conn, connection.remote, why)

    def _leave(self, connection: SrtConnection) -> None:
        publisher, connection.publisher = connection.publisher, None
        if publisher is not None:
            publisher.close()

    def _kick(self, conn: int, message: str) -> None:
        connection = self.connections.get(conn)
        if connection is not None:
            log.info("SRT publisher %s: %s", connection.remote, message)
            connection.publisher = None  # the input already has its new publisher
            self._close(conn, message)

    def _fail(self, connection: SrtConnection, exc: ForumcastError) -> None:
        refused(self.env, self.protocol, connection.remote, exc)
        self._leave(connection)
        self._close(connection.id, exc.code)

    def _close(self, conn: int, reason: str) -> None:
        if self._listener is not None:
            self._listener.close_connection(conn, reason)

    async def watch_idle(self) -> None:
        """Close connections silent for ``idle_timeout`` or with no picture or sound after
        ``handshake_timeout`` (a supervised loop)."""
        clock, settings = self.env.clock, self.env.settings
        while True:
            await clock.sleep(IDLE_CHECK_INTERVAL)
            now = clock.monotonic()
            for connection in list(self.connections.values()):
                publisher = connection.publisher
                if publisher is None:
                    continue
                if now - connection.last_data > settings.idle_timeout:
                    message = f"nothing received for {settings.idle_timeout:g} s"
                    self._fail(connection, ForumcastError("ingest.idle_timeout", message))
                elif publisher.remuxer.init is None and now - connection.opened > settings.handshake_timeout:
                    message = f"no audio or video {settings.handshake_timeout:g} s after connecting"
                    self._fail(connection, ForumcastError("ingest.handshake_timeout", message))


def _kinds(stream_types: frozenset[int]) -> frozenset[TagKind]:
    """The FLV tracks a program's stream types make (the ones we relay)."""
    kinds = {TagKind.VIDEO for t in stream_types if t in (H264, HEVC)}
    return frozenset(kinds | {TagKind.AUDIO for t in stream_types if t == AAC_ADTS})
