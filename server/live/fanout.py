"""Writing one stream to many WebSockets: a stage's program or a producer's input preview.

:class:`Fanout` owns the viewers of one stream and its GOP cache. For every fragment it
builds the WebSocket frame once, asks each viewer's :class:`~server.media.fanout.ViewerGate`
whether to send it (given the bytes still queued in that viewer's transport), and writes
the same bytes to each transport without awaiting: a slow viewer only ever delays itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from server.errors import CODES
from server.live.frames import binary_frame, close_frame, text_frame
from server.media.fanout import GOP_CACHE_BYTES, GopCache, Verdict, ViewerGate
from server.media.types import InitSegment, MediaFragment

log = logging.getLogger("forumcast.live")


class Viewer:
    """One watching WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, gate: ViewerGate) -> None:
        self.ws = ws
        self.transport = transport
        self.gate = gate
        self._closing: asyncio.TimerHandle | None = None

    def queued(self) -> int:
        return self.transport.get_write_buffer_size()

    @property
    def gone(self) -> bool:
        return self._closing is not None or self.transport.is_closing()

    def write(self, frame: bytes) -> None:
        if not self.gone:
            self.transport.write(frame)

    def kick(self, code: str, message: str, *, grace: float = 2.0) -> None:
        """Send an error event and a close frame with the code's close code, then drop the
        connection after ``grace`` seconds: a viewer this far behind may never read its
        queue, and a polite closing handshake would wait for it."""
        if self.gone:
            return
        self.transport.write(text_frame({"type": "error", "code": code, "message": message}))
        self.transport.write(close_frame(CODES[code].ws, message))
        self._closing = asyncio.get_running_loop().call_later(grace, self.transport.abort)


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
                viewer.transport.write(frame)
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
        viewer.gate.joined(had_keyframe=len(self.cache) > 0)

    def leave(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)

    def broadcast(self, message: dict[str, Any]) -> None:
        frame = text_frame(message)
        for viewer in self.viewers:
            viewer.write(frame)
