"""A stage program's switcher: one output stream out of many sources, cut at keyframes.

Sans-I/O. The caller tells a :class:`Switcher` what its sources produce (:meth:`~Switcher.
source_init`, :meth:`~Switcher.feed`) and which source it wants on air (:meth:`~Switcher.
request`); each call returns the :data:`Output` items to send to viewers, in order. Nothing
here knows about sockets, clocks or schedules: *why* a source is wanted (a producer's take,
the schedule, a failover) is the caller's business.

The rules:

- Exactly one source feeds the program at a time. A requested source goes on air at its
  next video keyframe fragment (:attr:`Cut.KEYFRAME`), so a viewer's decoder never gets a
  fragment whose references it has not seen. With :attr:`Cut.CACHED` it goes on air at once
  from the start of the GOP the caller hands over (the source's cached GOP), at the price of
  showing up to one GOP of slightly older picture.
- Until the switch happens, the old source stays on air: a pending take never blanks the
  program.
- Every fragment goes through one :class:`~server.media.timeline.Timeline`, spliced at each
  switch, so every track's decode time continues without a gap and never goes backwards, in
  its own timescale, with sequence numbers continuing.
- When the new source's init segment differs from the program's in anything a decoder must
  know (:meth:`~server.media.types.InitSegment.signature`: track set, codecs and their
  configuration, timescales, sizes), the switch emits :class:`Reinit` with the new init
  before the first fragment. Identical decoder configurations need no re-init.
- If the on-air source itself restarts with a new init segment (an encoder restart), the
  program re-inits if needed and waits for that source's next keyframe.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from server.media.timeline import Timeline
from server.media.types import InitSegment, MediaFragment


class Cut(enum.Enum):
    KEYFRAME = "keyframe"  # at the new source's next keyframe fragment
    CACHED = "cached"  # at once, from the start of the source's cached GOP


@dataclass(frozen=True, slots=True)
class Reinit:
    """Viewers need ``init`` before the next fragment (the first one, or a re-init)."""

    init: InitSegment


@dataclass(frozen=True, slots=True)
class Emit:
    """A fragment of the program, already on the program's timeline."""

    fragment: MediaFragment
    source: str
    #: How the source's decode times were moved, per track (:attr:`Timeline.offsets`).
    offsets: dict[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Switched:
    """``source`` is on air from the next :class:`Emit` on (``reinit``: a :class:`Reinit` came with it)."""

    source: str
    previous: str | None
    reinit: bool


Output = Reinit | Emit | Switched


class Switcher:
    def __init__(self) -> None:
        #: The source on air (None before the first switch).
        self.current: str | None = None
        #: The source waiting for its keyframe (None when no switch is pending).
        self.pending: str | None = None
        #: The program's init segment, as its viewers have it.
        self.init: InitSegment | None = None
        self._inits: dict[str, InitSegment] = {}
        self._timeline = Timeline()
        self._need_keyframe = False
        #: After :meth:`resume` with a source: its fragments already out are skipped until
        #: the one that continues the program exactly (or, after a gap, a keyframe).
        self._resuming = False
        self._behind_keyframes = 0

    def resume(
        self,
        init: InitSegment,
        last: MediaFragment | None,
        *,
        source: str | None = None,
        offsets: dict[int, int] | None = None,
    ) -> None:
        """Continue a program someone else made: its viewers have ``init`` and last got
        ``last`` (on the program's timeline). The first source then goes on air without a
        re-init if its decoder configuration is the same, its first fragment placed right
        after ``last``.

        With ``source`` (on air in ``last``, whose init this switcher has) and the
        ``offsets`` it was placed with, that source stays on air and continues unspliced
        from its fragment after ``last``: no keyframe wait, nothing shown twice, nothing
        skipped. Fragments of it already out are dropped; if the next one leaves a gap, the
        program splices at the source's next keyframe instead."""
        self.init = init
        if last is None:
            return
        self._timeline.continue_after(last, init)
        if source is not None and offsets and source in self._inits:
            self.current = source
            if self.pending == source:
                self.pending = None
            self._timeline.follow(offsets)
            self._resuming = True
            self._behind_keyframes = 0

    def source_init(self, source: str, init: InitSegment) -> list[Output]:
        """``source`` has (a new) init segment; re-inits the program if it is the one on air."""
        self._inits[source] = init
        if source != self.current:
            return []
        # The on-air encoder restarted: its next fragments count from a new origin and start
        # with a keyframe; splice there.
        self._timeline.splice()
        self._need_keyframe = True
        self._resuming = False
        return self._adopt(init)

    def forget(self, source: str) -> None:
        """``source`` went away: it cannot be switched to until it has an init again."""
        self._inits.pop(source, None)
        if self.pending == source:
            self.pending = None

    def request(
        self, source: str, *, cut: Cut = Cut.KEYFRAME, cached: Sequence[MediaFragment] = ()
    ) -> list[Output]:
        """Put ``source`` on air: now (``cut=CACHED`` with a GOP starting at a keyframe in
        ``cached``), or at its next keyframe fragment. A request for the source already on
        air cancels a pending switch."""
        if source == self.current:
            self.pending = None
            return []
        if cut is Cut.CACHED and cached and cached[0].keyframe and source in self._inits:
            out = self._switch(source)
            for fragment in cached:
                out.append(self._emit(source, fragment))
            return out
        self.pending = source
        return []

    def feed(self, source: str, fragment: MediaFragment) -> list[Output]:
        """A fragment from ``source`` (already on that source's own continuous timeline)."""
        if source == self.pending and fragment.keyframe and source in self._inits:
            out = self._switch(source)
            out.append(self._emit(source, fragment))
            return out
        if source != self.current or source not in self._inits:
            return []
        if self._resuming:
            fits = self._timeline.fits(fragment)
            if fits < 0 and not (fragment.keyframe and self._behind_keyframes):
                # the last leader sent it already (the cache it comes from holds one GOP:
                # a second keyframe still behind means this copy lags, so splice there)
                self._behind_keyframes += fragment.keyframe
                return []
            self._resuming = False
            if fits != 0:  # a hole after what the last leader sent, or a lagging copy
                self._timeline.splice()
                self._need_keyframe = True
        if self._need_keyframe:
            if not fragment.keyframe:
                return []
            self._need_keyframe = False
        return [self._emit(source, fragment)]

    def _switch(self, source: str) -> list[Output]:
        previous = self.current
        self.current = source
        self.pending = None
        self._need_keyframe = False
        self._resuming = False
        self._timeline.splice()
        out = self._adopt(self._inits[source])
        out.append(Switched(source, previous, reinit=bool(out)))
        return out

    def _adopt(self, init: InitSegment) -> list[Output]:
        """The program takes ``init``; a :class:`Reinit` if its viewers need it."""
        old = self.init
        if old is not None and old.signature() == init.signature():
            return []
        self.init = init
        return [Reinit(init)]

    def _emit(self, source: str, fragment: MediaFragment) -> Emit:
        placed = self._timeline.place(fragment, self._inits[source])
        return Emit(placed, source, self._timeline.offsets)
