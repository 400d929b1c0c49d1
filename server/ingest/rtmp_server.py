"""The RTMP(S) listener: a thin asyncio adapter around :class:`~server.media.rtmp.session.ServerSession`.

Each connection is an :class:`asyncio.Protocol`: received bytes go to its session, the
session's replies go back out, and its events are acted on here:

- ``PublishRequested``: the target is read from the ``connect`` app and the stream name
  (:func:`server.ingest.addressing.rtmp_target`), then admitted like any publisher
  (:func:`server.ingest.publisher.admit`: input, key under the throttle, takeover). While
  that runs, reading pauses (the session holds what already came). Accepted: ``onStatus
  NetStream.Publish.Start`` and a :class:`~server.ingest.publisher.RemuxedPublisher`.
  Refused: ``onStatus`` level ``error``, code ``NetStream.Publish.BadName``, and our error
  code and message as the description (what ffmpeg prints and OBS logs), then close.
- ``MediaMessage``: audio and video into the remuxer, ``onMetaData`` kept for the inputs view.
- ``Unpublished`` (FCUnpublish, deleteStream): the input is left; the connection may publish again.

Errors end only their connection: an :class:`~server.errors.RtmpError` from the core or a
``media.*`` error from the remux is logged once, counted
(``forumcast_publisher_refused_total{protocol,code}``) and the socket closed; the input's
viewers keep what they had (automation fails over as for any publisher that left).

Deadlines, on the service clock: a connection must be publishing within
``handshake_timeout`` of connecting (a slowloris gets ``ingest.handshake_timeout``), and a
publishing one may not be silent for ``idle_timeout``. At most ``max_connections`` at once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, cast

from server.clock import Timer
from server.errors import ForumcastError
from server.ingest.addressing import rtmp_target
from server.ingest.publisher import IngestEnv, RemuxedPublisher, admit, refused
from server.media.flv import TagKind
from server.media.rtmp.events import Event, MediaKind, MediaMessage, PublishRequested, Unpublished
from server.media.rtmp.session import ServerSession

log = logging.getLogger("forumcast.ingest")

_TAG = {MediaKind.AUDIO: TagKind.AUDIO, MediaKind.VIDEO: TagKind.VIDEO}
#: Seconds between looks for silent publishers.
IDLE_CHECK_INTERVAL = 1.0


class RtmpConnection(asyncio.Protocol):
    def __init__(self, server: RtmpServer) -> None:
        self.server = server
        self.env = server.env
        self.session = ServerSession()
        self.transport: asyncio.Transport | None = None
        self.remote = "?"
        self.publisher: RemuxedPublisher | None = None
        self.last_data = 0.0
        self._deadline: Timer | None = None
        self._admission: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def client(self) -> str:
        """The peer's address without its port (what the throttle counts)."""
        return self.remote.rpartition(":")[0] or self.remote

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        peer = transport.get_extra_info("peername")
        self.remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
        server = self.server
        if len(server.connections) >= self.env.settings.max_connections:
            self._fail(ForumcastError("ingest.too_many_connections", "too many RTMP connections"))
            return
        server.connections.add(self)
        self.env.metrics.publisher_connections.labels(protocol=server.protocol).inc()
        self.last_data = self.env.clock.monotonic()
        self._deadline = self.env.clock.call_later(self.env.settings.handshake_timeout, self._handshake_late)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.last_data = self.env.clock.monotonic()
        try:
            events = self.session.receive_data(data)
            if self.publisher is not None:
                self.publisher.received(self.last_data)
            self._handle(events)
        except ForumcastError as exc:
            self._fail(exc)
            return
        self._flush()

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self._admission is not None:
            self._admission.cancel()
        if self in self.server.connections:
            self.server.connections.discard(self)
            self.env.metrics.publisher_connections.labels(protocol=self.server.protocol).dec()
        self._closed = True
        self._leave()

    # -- events

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, MediaMessage):
                if self.publisher is None:
                    continue
                tag = _TAG.get(event.kind)
                if tag is not None:
                    self.publisher.feed(tag, event.timestamp, event.payload)
                else:
                    self.publisher.set_metadata(event.values)
            elif isinstance(event, PublishRequested):
                assert self.transport is not None
                self.transport.pause_reading()
                self._admission = asyncio.ensure_future(self._admit(event))
            elif isinstance(event, Unpublished):
                self._leave()

    async def _admit(self, event: PublishRequested) -> None:
        session, transport = self.session, self.transport
        assert transport is not None
        try:
            target = rtmp_target(session.app, event.stream_name, expected_app=self.env.settings.rtmp_app)
            live, takeover = await admit(
                self.env, target.input, target.key, client=self.client, takeover=target.takeover
            )
            if self._closed:
                return
            self.publisher = RemuxedPublisher(
                self.env,
                live,
                protocol=self.server.protocol,
                remote=self.remote,
                takeover=takeover,
                kick=self._kicked,
            )  # (attach may still find the input busy: another publisher got in meanwhile)
        except ForumcastError as exc:
            if not self._closed:
                session.reject_publish(description=f"{exc.code}: {exc.message}")
                self._fail(exc)
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        try:
            self._handle(session.accept_publish())
        except ForumcastError as exc:
            self._fail(exc)
            return
        self._flush()
        transport.resume_reading()

    def _leave(self) -> None:
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            publisher.close()

    # -- ends

    def _flush(self) -> None:
        out = self.session.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    def _fail(self, exc: ForumcastError) -> None:
        """Log and count ``exc`` once, send what the session has to say, and close."""
        if self._closed:
            return
        refused(self.env, self.server.protocol, self.remote, exc)
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._flush()
        self._leave()
        if self.transport is not None:
            self.transport.close()  # after what is buffered (a refusal's onStatus) is written

    def _kicked(self, code: str, message: str) -> None:
        log.info("RTMP publisher %s: %s", self.remote, message)
        self.publisher = None  # the input already has its new publisher
        self.close()

    def _handshake_late(self) -> None:
        self._deadline = None
        if self.publisher is None and not self._closed:
            timeout = self.env.settings.handshake_timeout
            self._fail(
                ForumcastError("ingest.handshake_timeout", f"not publishing {timeout:g} s after connecting")
            )

    def idle_check(self, now: float) -> None:
        timeout = self.env.settings.idle_timeout
        if self.publisher is not None and now - self.last_data > timeout:
            self._fail(ForumcastError("ingest.idle_timeout", f"nothing received for {timeout:g} s"))


class RtmpServer:
    """One listening socket (RTMP, or RTMPS with ``tls``) and its connections."""

    def __init__(self, env: IngestEnv, *, port: int, tls: ssl.SSLContext | None = None) -> None:
        self.env = env
        self.port = port
        self.tls = tls
        self.protocol = "rtmps" if tls is not None else "rtmp"
        self.connections: set[RtmpConnection] = set()
        self._server: asyncio.Server | None = None

    @property
    def bound_port(self) -> int:
        assert self._server is not None and self._server.sockets
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        settings = self.env.settings
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = {"reuse_port": True} if settings.reuse_port else {}
        try:
            self._server = await loop.create_server(
                lambda: RtmpConnection(self),
                settings.host,
                self.port,
                ssl=self.tls,
                backlog=512,
                ssl_handshake_timeout=settings.handshake_timeout if self.tls else None,
                **options,
            )
        except OSError as exc:
            raise ForumcastError(
                "ingest.bind_failed", f"cannot listen for {self.protocol.upper()} on port {self.port}: {exc}"
            ) from exc
        log.info("%s: listening on %s:%d", self.protocol.upper(), settings.host, self.bound_port)

    async def watch_idle(self) -> None:
        """Close publishers silent for longer than ``idle_timeout`` (a supervised loop)."""
        clock = self.env.clock
        while True:
            await clock.sleep(IDLE_CHECK_INTERVAL)
            now = clock.monotonic()
            for connection in list(self.connections):
                connection.idle_check(now)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self.connections):
            connection.close()
        await self._server.wait_closed()
        self._server = None


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """The server-side TLS context for RTMPS (TLS 1.2 and later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ForumcastError("ingest.bad_certificate", f"cannot load {cert} / {key}: {exc}") from exc
    return context
