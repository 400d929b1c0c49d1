"""Fan-out decisions: what a joining viewer gets first, and what a lagging viewer must skip.

Pure bookkeeping, no sockets. :class:`GopCache` keeps an input's current init segment and
the fragments since its last video keyframe, so a viewer who joins can start decoding at
once. :class:`ViewerGate` decides, fragment by fragment, whether one viewer is sent a
fragment, given how many bytes are still queued in its transport: over its budget it skips
until the next keyframe fragment (so it never receives a fragment it cannot decode), and a
viewer that stays behind for longer than ``max_behind`` seconds is to be disconnected, and
so is one that takes nothing at all for that long (:meth:`ViewerGate.stalled`: the bytes its
peer acknowledged stop growing while some wait), before the kernel's buffers can hide it.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

from server.media.types import InitSegment, MediaFragment

#: Whatever the caller keeps with each cached fragment (e.g. its pre-built wire frame).
Extra = TypeVar("Extra")

#: Default bound of one input's cached GOP, in bytes (about 30 s of a 2 Mbps stream).
GOP_CACHE_BYTES = 8 * 2**20
#: Default bytes that may wait in one viewer's transport before it skips to a keyframe.
SEND_BUDGET = 2**20
#: Default seconds a viewer may stay behind before it is disconnected.
MAX_BEHIND = 10.0


class GopCache(Generic[Extra]):
    """The init segment and the fragments since the last keyframe, bounded in bytes.

    If one GOP grows past ``max_bytes`` (an encoder with a very long keyframe interval), the
    cache is emptied and refills from the next keyframe: joiners then wait for that keyframe
    instead of the server holding unbounded memory.
    """

    def __init__(self, *, max_bytes: int = GOP_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.init: InitSegment | None = None
        self._fragments: deque[tuple[MediaFragment, Extra]] = deque()
        self._bytes = 0
        self._waiting_for_keyframe = True

    def set_init(self, init: InitSegment) -> None:
        self.init = init
        self.clear()

    def clear(self) -> None:
        self._fragments.clear()
        self._bytes = 0
        self._waiting_for_keyframe = True

    def add(self, fragment: MediaFragment, extra: Extra) -> None:
        if fragment.keyframe:
            self._fragments.clear()
            self._bytes = 0
            self._waiting_for_keyframe = False
        elif self._waiting_for_keyframe:
            return
        if self._bytes + len(fragment) > self.max_bytes:
            self.clear()
            return
        self._fragments.append((fragment, extra))
        self._bytes += len(fragment)

    def __iter__(self) -> Iterator[tuple[MediaFragment, Extra]]:
        return iter(self._fragments)

    def __len__(self) -> int:
        return len(self._fragments)

    @property
    def nbytes(self) -> int:
        return self._bytes


class GateState(enum.Enum):
    WAITING = "waiting"  # has not had a keyframe yet (joined before the first one)
    LIVE = "live"  # receiving every fragment
    SKIPPING = "skipping"  # fell behind: drops fragments until the next keyframe


class Verdict(enum.Enum):
    SEND = "send"
    SKIP = "skip"
    DISCONNECT = "disconnect"


class ViewerGate:
    """One viewer's admission decisions; ``dropped`` counts the fragments it skipped."""

    def __init__(self, *, send_budget: int = SEND_BUDGET, max_behind: float = MAX_BEHIND) -> None:
        self.send_budget = send_budget
        self.max_behind = max_behind
        self.state = GateState.WAITING
        self.dropped = 0
        self.behind_since: float | None = None
        self._delivered = 0  # bytes the peer had taken at the last progress
        self._progress_at: float | None = None

    def joined(self, *, had_keyframe: bool) -> None:
        """The viewer was sent the init segment and the cached GOP (which starts with a keyframe)."""
        self.state = GateState.LIVE if had_keyframe else GateState.WAITING

    def restart(self) -> None:
        """A new init segment was sent: the next fragment it can decode is a keyframe."""
        self.state = GateState.WAITING

    def offer(self, fragment: MediaFragment, *, queued: int, now: float) -> Verdict:
        """Whether to send ``fragment`` to a viewer with ``queued`` bytes not yet written."""
        # An empty queue always takes the fragment, however large: a budget smaller than a
        # keyframe must slow a viewer down, not starve it.
        fits = queued == 0 or queued + len(fragment) <= self.send_budget
        if self.state is GateState.LIVE and fits:
            self.behind_since = None
            return Verdict.SEND
        if self.state is not GateState.LIVE and fragment.keyframe and fits:
            self.behind_since = None
            self.state = GateState.LIVE
            return Verdict.SEND
        if self.state is GateState.WAITING and fits:
            return Verdict.SKIP  # not behind: there is simply nothing decodable yet
        # Over its budget (also while waiting for a keyframe after a re-init): behind.
        if self.state is GateState.LIVE:
            self.state = GateState.SKIPPING
        self.dropped += 1
        if self.behind_since is None:
            self.behind_since = now
        elif now - self.behind_since > self.max_behind:
            return Verdict.DISCONNECT
        return Verdict.SKIP

    def stalled(self, *, delivered: int, queued: int, now: float) -> bool:
        """Whether the viewer has taken nothing for longer than ``max_behind`` while bytes wait.

        ``delivered``: bytes the peer has acknowledged so far; ``queued``: bytes written but
        not yet acknowledged (in the transport and in the kernel). Checked now and then, not
        per fragment: a viewer that stops reading fills the kernel's buffers first, and the
        queue the gate sees per fragment stays empty until they are full.
        """
        if delivered > self._delivered or queued == 0 or self._progress_at is None:
            self._delivered = max(delivered, self._delivered)
            self._progress_at = now
            return False
        return now - self._progress_at > self.max_behind
