"""Writing one stream to many WebSockets: a stage's program or a producer's input preview.

:class:`Fanout` owns the viewers of one stream and its GOP cache. For every fragment it
builds the WebSocket frame once, asks each viewer's :class:`~server.media.fanout.ViewerGate`
whether to send it (given the bytes still queued in that viewer's transport), and writes
the same bytes to each transport without awaiting: a slow viewer only ever delays itself.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import termios
from collections.abc import Callable
from typing import Any

from aiohttp import web

from server.errors import CODES
from server.live.frames import binary_frame, close_frame, text_frame
from server.media.fanout import GOP_CACHE_BYTES, GopCache, Verdict, ViewerGate
from server.media.types import InitSegment, MediaFragment

log = logging.getLogger("forumcast.live")


#: Default kernel send buffer of a viewer's socket, bytes (Linux doubles it for bookkeeping).
#: Fixed instead of autotuned (up to 4 MiB): a viewer that never reads then pins this much
#: kernel memory, not megabytes, and its backlog shows in the transport where the gate sees it.
#: 64 KiB carry a few Mbit/s to a viewer 200 ms away (raise it for high bitrates far away).
VIEWER_SEND_BUFFER = 64 * 2**10

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets, freeing the buffers


def kernel_unsent(sock: socket.socket | None) -> int:
    """Bytes written to ``sock`` that its peer has not acknowledged yet (Linux ``SIOCOUTQ``)."""
    if sock is None or sock.fileno() < 0:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])


class Viewer:
    """One watching WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, gate: ViewerGate) -> None:
        self.ws = ws
        self.transport = transport
        self.gate = gate
        #: Bytes of media and events written for this viewer (not aiohttp's own pings).
        self.written = 0
        #: Called once, when the first media fragment is written for this viewer (its TTFF).
        self.on_first_media: Callable[[], None] | None = None
        self._socket: socket.socket | None = transport.get_extra_info("socket")
        self._closing: asyncio.TimerHandle | None = None

    def limit_kernel_buffer(self, size: int) -> None:
        if self._socket is not None:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def queued(self) -> int:
        return self.transport.get_write_buffer_size()

    def stalled(self, now: float) -> bool:
        """Whether the viewer took nothing for ``max_behind`` while bytes waited for it."""
        unsent = self.queued() + kernel_unsent(self._socket)
        return self.gate.stalled(delivered=self.written - unsent, queued=unsent, now=now)

    def first_media(self) -> None:
        if self.on_first_media is not None:
            callback, self.on_first_media = self.on_first_media, None
            callback()

    @property
    def gone(self) -> bool:
        return self._closing is not None or self.transport.is_closing()

    def write(self, frame: bytes) -> None:
        if not self.gone:
            self.written += len(frame)
            self.transport.write(frame)

    def kick(self, code: str, message: str, *, grace: float = 2.0) -> None:
        """Send an error event and a close frame with the code's close code, then drop the
        connection after ``grace`` seconds: a viewer this far behind may never read its
        queue, and a polite closing handshake would wait for it. Dropped, the socket is
        reset rather than closed, so the kernel does not keep its unsent bytes as an orphan."""
        if self.gone:
            return
        self.write(text_frame({"type": "error", "code": code, "message": message}))
        self.write(close_frame(CODES[code].ws, message))
        self._closing = asyncio.get_running_loop().call_later(grace, self.drop)

    def drop(self) -> None:
        """Reset the connection now (whatever it still had to send is thrown away)."""
        if self._socket is not None and self._socket.fileno() >= 0:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.transport.abort()


class Fanout:
    """The viewers of one stream, its current init segment and cached GOP."""

    def __init__(
        self,
        name: str,
        *,
        gop_cache_bytes: int = GOP_CACHE_BYTES,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        self.viewers: set[Viewer] = set()
        self.cache: GopCache[bytes] = GopCache(max_bytes=gop_cache_bytes)
        self._on_dropped = on_dropped
        self._init_frame = b""

    @property
    def init(self) -> InitSegment | None:
        return self.cache.init

    def set_init(self, init: InitSegment) -> None:
        """Take ``init`` as the stream's init segment; viewers get a re-init if it changed."""
        current = self.cache.init
        if current is not None and current.data == init.data:
            return
        self.cache.set_init(init)
        self._init_frame = binary_frame(init.data)
        # Viewers who joined before the first init are waiting for it as "init".
        event = text_frame({"type": "init" if current is None else "reinit", "mime": init.mime})
        for viewer in self.viewers:
            viewer.write(event)
            viewer.write(self._init_frame)
            viewer.gate.restart()

    def push(self, fragment: MediaFragment, now: float, *, frame: bytes | None = None) -> None:
        """Send ``fragment`` to every viewer whose gate admits it (``frame``: its prebuilt frame)."""
        frame = binary_frame(fragment.data) if frame is None else frame
        self.cache.add(fragment, frame)
        dropped = 0
        for viewer in self.viewers:
            if viewer.gone:
                continue
            verdict = viewer.gate.offer(fragment, queued=viewer.queued(), now=now)
            if verdict is Verdict.SEND:
                viewer.written += len(frame)
                viewer.transport.write(frame)
                if viewer.on_first_media is not None:
                    viewer.first_media()
            else:
                dropped += 1
                if verdict is Verdict.DISCONNECT:
                    log.info(
                        "%s: disconnecting a viewer behind for %.0f s", self.name, viewer.gate.max_behind
                    )
                    viewer.kick("live.too_slow", "too slow: behind the live edge for too long")
        if dropped and self._on_dropped is not None:
            self._on_dropped(dropped)

    def join(self, viewer: Viewer) -> None:
        """Add ``viewer`` and send it the init segment and the cached GOP at once."""
        self.viewers.add(viewer)
        init = self.cache.init
        if init is None:
            viewer.gate.joined(had_keyframe=False)
            return
        viewer.write(text_frame({"type": "init", "mime": init.mime}))
        viewer.write(self._init_frame)
        for _, frame in self.cache:
            viewer.write(frame)
        if len(self.cache) > 0:
            viewer.first_media()
        viewer.gate.joined(had_keyframe=len(self.cache) > 0)

    def leave(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)

    def drop_stalled(self, now: float) -> int:
        """Reset every viewer that has taken nothing for ``max_behind``; how many there were."""
        # Kicked viewers still in their grace period count too: one that stopped reading
        # would otherwise keep its buffers for the whole grace.
        stalled = [v for v in self.viewers if not v.transport.is_closing() and v.stalled(now)]
        for viewer in stalled:
            viewer.drop()  # no error event: it would only join the bytes the viewer never read
        if stalled:
            log.info("%s: dropped %d viewers that stopped reading", self.name, len(stalled))
        return len(stalled)

    def broadcast(self, message: dict[str, Any]) -> None:
        frame = text_frame(message)
        for viewer in self.viewers:
            viewer.write(frame)
