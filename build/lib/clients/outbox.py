"""What a publisher sends next: the sans-I/O core of :mod:`clients.publisher`.

The source is live: it keeps producing at its own pace whether a connection is up or not.
:class:`Outbox` decides which of its items go out, and nothing else — the WebSocket code in
:mod:`clients.publisher` only moves what :meth:`Outbox.pop` returns onto the socket and tells
the outbox when a connection comes and goes. The rules:

- after every (re)connect the current init segment goes first, then fragments from the next
  keyframe on: the server needs both before it can show anything, and a fragment that does
  not start with a keyframe cannot be decoded without the one before it;
- while disconnected nothing is kept: a live stream resumes at *now*, not where it broke off;
- when the connection cannot keep up (more than ``max_pending_seconds`` of media queued) the
  queue is dropped and sending resumes at the next keyframe — a viewer sees a jump, never a
  broken picture, and the delay cannot grow without bound;
- a new init segment from the source (a re-init) goes out at once, then its first keyframe.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from server.media.types import InitSegment, MediaFragment

Item = InitSegment | MediaFragment

#: Default limit on queued media before the outbox skips to the next keyframe.
MAX_PENDING_SECONDS = 3.0


class Link(enum.Enum):
    OFFLINE = "offline"
    ONLINE = "online"


@dataclass(slots=True)
class OutboxStats:
    inits_sent: int = 0
    fragments_sent: int = 0
    bytes_sent: int = 0
    fragments_dropped: int = 0  # produced while offline, waiting for a keyframe, or skipped as late


class Outbox:
    def __init__(self, *, max_pending_seconds: float = MAX_PENDING_SECONDS) -> None:
        self.max_pending_seconds = max_pending_seconds
        self.link = Link.OFFLINE
        self.init: InitSegment | None = None
        self.finished = False  # the source has ended
        self.stats = OutboxStats()
        self._queue: deque[Item] = deque()
        self._queued_seconds = 0.0
        self._need_keyframe = True

    # --- events ---------------------------------------------------------------------------

    def connected(self) -> None:
        """A connection is up: start it with the init segment and wait for a keyframe."""
        self._clear()
        self.link = Link.ONLINE
        self._need_keyframe = True
        if self.init is not None:
            self._queue.append(self.init)

    def disconnected(self) -> None:
        self._clear()
        self.link = Link.OFFLINE
        self._need_keyframe = True

    def finish(self) -> None:
        """The source has no more items; what is queued still goes out."""
        self.finished = True

    def offer(self, item: Item) -> None:
        """The source produced ``item``."""
        if isinstance(item, InitSegment):
            self.init = item
            self._need_keyframe = True  # the fragments of the old init must not follow the new one
            if self.link is Link.ONLINE:
                self._clear()
                self._queue.append(item)
            return
        if self.link is Link.OFFLINE or self.init is None:
            self.stats.fragments_dropped += 1
            return
        if self._need_keyframe:
            if not item.keyframe:
                self.stats.fragments_dropped += 1
                return
            self._need_keyframe = False
        self._queue.append(item)
        self._queued_seconds += self._seconds(item)
        if self._queued_seconds > self.max_pending_seconds:
            self._skip_to_keyframe()

    # --- output ---------------------------------------------------------------------------

    def pop(self) -> Item | None:
        """The next item to send, or ``None`` when there is nothing to send right now."""
        if not self._queue:
            return None
        item = self._queue.popleft()
        if isinstance(item, InitSegment):
            self.stats.inits_sent += 1
        else:
            self._queued_seconds = max(0.0, self._queued_seconds - self._seconds(item))
            self.stats.fragments_sent += 1
        self.stats.bytes_sent += len(item.data)
        return item

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def queued_seconds(self) -> float:
        return self._queued_seconds

    @property
    def drained(self) -> bool:
        """The source has ended and everything it produced has been handed out."""
        return self.finished and not self._queue

    # --- internals ------------------------------------------------------------------------

    def _skip_to_keyframe(self) -> None:
        """Too far behind: drop the queued fragments before the newest queued keyframe, or all
        of them and wait for the next keyframe. A queued init segment stays: the server needs it.
        """
        fragments = [item for item in self._queue if isinstance(item, MediaFragment)]
        newest = max((i for i, f in enumerate(fragments) if f.keyframe), default=0)
        kept = fragments[newest:] if newest > 0 else []
        self.stats.fragments_dropped += len(fragments) - len(kept)
        self._queue = deque([*(item for item in self._queue if isinstance(item, InitSegment)), *kept])
        self._queued_seconds = sum(self._seconds(f) for f in kept)
        self._need_keyframe = not kept

    def _clear(self) -> None:
        self.stats.fragments_dropped += sum(isinstance(item, MediaFragment) for item in self._queue)
        self._queue.clear()
        self._queued_seconds = 0.0

    def _seconds(self, fragment: MediaFragment) -> float:
        """How much media a fragment holds: its longest track, in seconds."""
        init = self.init
        longest = 0.0
        for traf in fragment.tracks:
            track = init.track(traf.track_id) if init is not None else None
            if track is not None and track.timescale > 0:
                longest = max(longest, traf.duration / track.timescale)
        return longest
