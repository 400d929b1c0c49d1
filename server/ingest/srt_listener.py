"""One SRT port for many publishers: libsrt's sockets driven by one thread, events on asyncio.

libsrt does its own I/O in its own threads and offers a blocking or a polling API, not file
descriptors an asyncio loop could watch. So a :class:`SrtListener` runs one thread of its
own: an SRT epoll over the listening socket and every accepted connection (all
non-blocking, a wait of at most ``_POLL_MS``). Everything the application sees is handed
to its event loop with ``call_soon_threadsafe``, so for each connection ``on_open``, then
``on_data`` chunks, then ``on_close`` arrive on the loop, in that order::

    SRT receive thread            listener thread                      event loop
    caller's handshake ─▶ admit(streamid, peer)
       Refusal → reject code       (no connection)
       Admission → passphrase ─▶  accept ──────────────────────────▶ on_open(conn, streamid, peer)
                                  recvmsg… (a batch per wake-up) ──▶ on_data(conn, payload)
                                  peer gone / kicked / too slow  ──▶ on_close(conn, why)

``admit`` runs inside libsrt's listen callback, in the thread that receives every packet of
this port: it may block briefly (the wiring awaits a key check on the loop with a
timeout), but every millisecond there delays all publishers on the port. Whatever it
raises rejects the caller (``SRT_REJX_ISE``), as a :class:`Refusal` does with its code;
SRT has no way to send a reason text, so ``reason`` only goes to our log. A passphrase in
the :class:`Admission` is set on that connection alone; a caller with a different one, or
none, is then refused by libsrt itself (the caller sees "bad secret" or "unsecure").

Backpressure: bytes handed to the loop and not yet delivered are counted per connection;
past ``max_queued`` the connection is closed ("too slow") instead of buffering without
bound. :meth:`SrtListener.close_connection` (a takeover, bad media) drops data still
queued for that connection and closes it within ``_POLL_MS``; :meth:`SrtListener.stop`
closes everything, delivers the last ``on_close`` calls, joins the thread and releases the
library (``srt_cleanup`` once the last listener of the process has stopped)::

    NEW ──start()──▶ RUNNING ──stop()──▶ STOPPING ──thread done──▶ STOPPED

``port`` 0 binds an ephemeral port (read it from :attr:`SrtListener.port`); turning SRT
off with ``srt_port = 0`` is the wiring's decision, not this class's.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import enum
import itertools
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.errors import SrtError
from server.ingest import srt_lib
from server.ingest.srt_lib import Library

log = logging.getLogger(__name__)

DEFAULT_LATENCY_MS = 120
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_MAX_QUEUED = 8 * 2**20  # bytes per connection waiting for the loop: ~8 s at 8 Mbit/s
_POLL_MS = 100  # how soon the thread notices stop() and close_connection()
_READS_PER_WAKE = 256  # messages read from one connection before serving the others
_BACKLOG = 16
_PASSPHRASE_LENGTHS = range(10, 80)  # SRTO_PASSPHRASE: 10..79 characters


@dataclass(frozen=True, slots=True)
class Admission:
    """Accept the caller, encrypted with ``passphrase`` (``""``: unencrypted)."""

    passphrase: str = ""

    def __post_init__(self) -> None:
        if self.passphrase and len(self.passphrase) not in _PASSPHRASE_LENGTHS:
            raise SrtError("srt.bad_passphrase", "an SRT passphrase has 10 to 79 characters")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Reject the caller with an ``SRT_REJX_*`` code (``srt_lib.REJX_*``); ``reason`` is logged."""

    code: int
    reason: str

    def __post_init__(self) -> None:
        if self.code < srt_lib.SRT_REJC_PREDEFINED:
            raise ValueError(f"SRT reject codes of applications are 1000 or more, not {self.code}")


Admit = Callable[[str, str], Admission | Refusal]


class ListenerState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(slots=True)
class _Connection:
    id: int
    sock: int
    streamid: str
    peer: str


class SrtListener:
    """An SRT listener on ``host:port`` accepting many publishers; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        admit: Admit,
        on_open: Callable[[int, str, str], None],
        on_data: Callable[[int, bytes], None],
        on_close: Callable[[int, str], None],
        loop: asyncio.AbstractEventLoop,
        latency_ms: int = DEFAULT_LATENCY_MS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        self.host = host
        self.port = port
        self.state = ListenerState.NEW
        self._admit = admit
        self._on_open = on_open
        self._on_data = on_data
        self._on_close = on_close
        self._loop = loop
        self._latency_ms = latency_ms
        self._max_connections = max_connections
        self._max_queued = max_queued
        self._lib: Library | None = None
        self._sock = -1
        self._eid = -1
        # ctypes frees a callback's trampoline with its Python object: keep it for our lifetime.
        self._hook = srt_lib.ListenCallback(self._listen_hook)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._finished = asyncio.Event()
        self._ids = itertools.count(1)
        # Thread side: open connections by SRT socket.
        self._by_sock: dict[int, _Connection] = {}
        # Both sides: bytes posted to the loop and not yet delivered; kick requests.
        self._lock = threading.Lock()
        self._queued: dict[int, int] = {}
        self._kicks: collections.deque[tuple[int, str]] = collections.deque()
        # Loop side: connections opened and not yet closed; those close_connection() asked to
        # close, whose data is no longer wanted.
        self._open: set[int] = set()
        self._kicked: set[int] = set()

    @property
    def connections(self) -> int:
        return len(self._by_sock)

    async def start(self) -> None:
        """Bind and listen (``srt.bind_failed`` if the port is taken), then start the thread."""
        if self.state is not ListenerState.NEW:
            raise RuntimeError(f"start() on a listener that is {self.state.value}")
        infos = await self._loop.getaddrinfo(
            self.host, self.port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
        )
        ip = str(infos[0][4][0])
        lib = self._lib = srt_lib.load()
        lib.startup()
        try:
            self._sock = lib.create_socket()
            lib.set_int(self._sock, srt_lib.SRTO_RCVSYN, 0)
            lib.set_int(self._sock, srt_lib.SRTO_SNDSYN, 0)
            lib.set_int(self._sock, srt_lib.SRTO_TRANSTYPE, srt_lib.SRTT_LIVE)
            lib.set_int(self._sock, srt_lib.SRTO_LATENCY, self._latency_ms)
            if ":" in ip:
                lib.set_int(self._sock, srt_lib.SRTO_IPV6ONLY, 0)
            try:
                lib.bind(self._sock, srt_lib.sockaddr(ip, self.port))
                lib.listen_callback(self._sock, self._hook)
                lib.listen(self._sock, _BACKLOG)
            except SrtError as exc:
                raise SrtError(
                    "srt.bind_failed", f"cannot listen for SRT on {self.host}:{self.port}: {exc.message}"
                ) from exc
            self.port = int(srt_lib.format_sockaddr(lib.sockname(self._sock)).rpartition(":")[2])
            self._eid = lib.epoll_create()
            lib.epoll_add(self._eid, self._sock, srt_lib.SRT_EPOLL_IN | srt_lib.SRT_EPOLL_ERR)
        except BaseException:
            if self._sock >= 0:
                lib.close(self._sock)
            if self._eid >= 0:
                lib.epoll_release(self._eid)
            lib.cleanup()
            raise
        self.state = ListenerState.RUNNING
        self._thread = threading.Thread(target=self._run, name=f"srt-listener:{self.port}", daemon=True)
        self._thread.start()
        log.info("SRT listener on %s:%d (libsrt %s, %s)", self.host, self.port, lib.version, lib.path)

    def close_connection(self, conn: int, reason: str) -> None:
        """Close one publisher's connection (from the loop); its ``on_close`` carries ``reason``
        and no more ``on_data`` is delivered for it."""
        if self.state is not ListenerState.RUNNING or conn not in self._open or conn in self._kicked:
            return
        self._kicked.add(conn)
        with self._lock:
            self._kicks.append((conn, reason))

    async def stop(self) -> None:
        """Close every connection (each gets ``on_close``), join the thread, release libsrt."""
        if self.state is ListenerState.NEW:
            self.state = ListenerState.STOPPED
            return
        if self.state is ListenerState.RUNNING:
            self.state = ListenerState.STOPPING
            self._stopping.set()
        await self._finished.wait()
        if self._thread is not None:
            self._thread.join()  # it has posted its last callback: only its return is left
        self.state = ListenerState.STOPPED

    # -- the listen callback, in libsrt's receive thread

    def _listen_hook(self, _opaque: Any, ns: int, _hs_version: int, peeraddr: Any, streamid: Any) -> int:
        """0 accepts ``ns``; -1 rejects it. Never lets an exception out (ctypes would turn it
        into 0, an acceptance)."""
        try:
            peer = srt_lib.format_sockaddr(srt_lib.sockaddr_at(peeraddr))
            verdict = self._decide(bytes(streamid or b""), peer)
            assert self._lib is not None
            if isinstance(verdict, Refusal):
                log.info("SRT caller %s refused (%d): %s", peer, verdict.code, verdict.reason)
                self._lib.set_reject_reason(ns, verdict.code)
                return -1
            if verdict.passphrase:
                self._lib.set_str(ns, srt_lib.SRTO_PASSPHRASE, verdict.passphrase)
            return 0
        except BaseException:
            log.exception("SRT listen callback failed; the caller is refused")
            with contextlib.suppress(BaseException):
                if self._lib is not None:
                    self._lib.set_reject_reason(ns, srt_lib.REJX_ISE)
            return -1

    def _decide(self, raw_streamid: bytes, peer: str) -> Admission | Refusal:
        if self.state is not ListenerState.RUNNING:
            return Refusal(srt_lib.REJX_DOWN, f"the listener is {self.state.value}")
        if len(self._by_sock) >= self._max_connections:
            return Refusal(srt_lib.REJX_OVERLOAD, f"{self._max_connections} publishers already connected")
        try:
            streamid = raw_streamid.decode("utf-8")
        except UnicodeDecodeError:
            return Refusal(srt_lib.REJX_BAD_REQUEST, "the streamid is not UTF-8")
        try:
            return self._admit(streamid, peer)
        except Exception as exc:
            log.exception("admit() failed for SRT caller %s", peer)
            return Refusal(srt_lib.REJX_ISE, f"admit() failed: {exc!r}")

    # -- the listener thread

    def _run(self) -> None:
        assert self._lib is not None
        lib = self._lib
        events = (srt_lib.EpollEvent * 64)()
        buffer = ctypes.create_string_buffer(srt_lib.LIVE_MAX_PAYLOAD)
        why_end = "the SRT listener stopped"
        try:
            while not self._stopping.is_set():
                self._apply_kicks()
                ready = lib.epoll_wait(self._eid, events, _POLL_MS)
                for event in events[:ready]:
                    if event.fd == self._sock:
                        self._accept_all(lib)
                    elif (connection := self._by_sock.get(event.fd)) is not None:
                        self._receive(lib, connection, event.events, buffer)
        except Exception:
            log.exception("the SRT listener on port %d failed", self.port)
            why_end = "the SRT listener failed"
        finally:
            for connection in list(self._by_sock.values()):
                self._drop(lib, connection, why_end)
            lib.close(self._sock)
            lib.epoll_release(self._eid)
            lib.cleanup()
            self._post(self._finished.set)

    def _apply_kicks(self) -> None:
        assert self._lib is not None
        with self._lock:
            kicks, self._kicks = list(self._kicks), collections.deque()
        wanted = {conn: reason for conn, reason in kicks}
        for connection in list(self._by_sock.values()):
            if connection.id in wanted:
                self._drop(self._lib, connection, wanted[connection.id])

    def _accept_all(self, lib: Library) -> None:
        while (accepted := lib.accept(self._sock)) is not None:
            sock, raw_peer = accepted
            if len(self._by_sock) >= self._max_connections:  # callers admitted at the same time
                log.info("SRT caller closed at accept: %d publishers already", self._max_connections)
                lib.close(sock)
                continue
            connection = _Connection(
                next(self._ids),
                sock,
                lib.get_str(sock, srt_lib.SRTO_STREAMID),
                srt_lib.format_sockaddr(raw_peer),
            )
            lib.epoll_add(self._eid, sock, srt_lib.SRT_EPOLL_IN | srt_lib.SRT_EPOLL_ERR)
            self._by_sock[sock] = connection
            self._post(self._deliver_open, connection.id, connection.streamid, connection.peer)

    def _receive(
        self, lib: Library, connection: _Connection, flags: int, buffer: ctypes.Array[ctypes.c_char]
    ) -> None:
        chunks: list[bytes] = []
        why: str | None = None
        for _ in range(_READS_PER_WAKE):
            size = lib.recvmsg(connection.sock, buffer)
            if size > 0:
                chunks.append(ctypes.string_at(buffer, size))
                continue
            if size < 0:
                code, message = lib.last_error()
                if code in (srt_lib.SRT_ECONNLOST, srt_lib.SRT_ENOCONN, srt_lib.SRT_EINVSOCK):
                    why = "the publisher disconnected"
                elif code != srt_lib.SRT_EASYNCRCV:
                    why = f"receiving failed: {message}"
            break
        if why is None and not chunks and flags & srt_lib.SRT_EPOLL_ERR:
            why = "the publisher disconnected"
        if chunks:
            payload = b"".join(chunks)
            with self._lock:
                queued = self._queued.get(connection.id, 0) + len(payload)
                if queued <= self._max_queued:
                    self._queued[connection.id] = queued
            if queued > self._max_queued:
                why = f"too slow: more than {self._max_queued} bytes waiting to be handled"
            else:
                self._post(self._deliver_data, connection.id, payload)
        if why is not None:
            self._drop(lib, connection, why)

    def _drop(self, lib: Library, connection: _Connection, why: str) -> None:
        lib.epoll_remove(self._eid, connection.sock)
        lib.close(connection.sock)
        del self._by_sock[connection.sock]
        self._post(self._deliver_close, connection.id, why)

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            self._stopping.set()

    # -- on the event loop

    def _deliver_open(self, conn: int, streamid: str, peer: str) -> None:
        self._open.add(conn)
        self._guard(conn, self._on_open, conn, streamid, peer)

    def _deliver_data(self, conn: int, payload: bytes) -> None:
        with self._lock:
            self._queued[conn] -= len(payload)
        if conn not in self._kicked:
            self._guard(conn, self._on_data, conn, payload)

    def _deliver_close(self, conn: int, why: str) -> None:
        self._open.discard(conn)
        self._kicked.discard(conn)
        with self._lock:
            self._queued.pop(conn, None)
        try:
            self._on_close(conn, why)
        except Exception:
            log.exception("on_close failed for SRT connection %d", conn)

    def _guard(self, conn: int, callback: Callable[..., None], *args: Any) -> None:
        """Run an application callback; if it raises, that connection alone is closed."""
        try:
            callback(*args)
        except Exception as exc:
            log.exception("SRT connection %d: the application's callback failed", conn)
            self.close_connection(conn, f"the application failed: {exc!r}")
