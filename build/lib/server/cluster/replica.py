"""A program stream read back: init segments and fragments again, and LL-HLS kept in step.

Sans-I/O. A :class:`ProgramReplica` is given the entries of one stage's program stream in
order (:meth:`~ProgramReplica.apply`) and answers what they mean for this instance's viewers:
a new init segment, a source switch, a fragment. It also keeps an LL-HLS
:class:`~server.media.hls.Packager` *in step with the leader's*: every fragment entry names
the part number the leader's packager gave it, and a fragment that started a segment there
carries that segment's :class:`~server.media.hls.SegmentStart`. A replica that starts
reading late (a new instance, a restart) or finds itself out of step leaves LL-HLS alone
until the next segment start, then restarts its packager from it; from there it names, cuts
and dates everything as the leader does, so every instance serves the same playlists and
the same bytes under the same names.

The leader runs one too, on the packager it stamps entries from (its *shadow*): after taking
over a stage it replays the stream into it, and goes on numbering where the last leader
stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from server.cluster.entries import ProgramEntry, ProgramKind
from server.errors import ForumcastError, MediaError
from server.media.fmp4 import Fmp4Parser
from server.media.hls import Packager, Part, SegmentStart
from server.media.types import InitSegment, MediaFragment

log = logging.getLogger("forumcast.cluster")


@dataclass(frozen=True, slots=True)
class NewInit:
    init: InitSegment


@dataclass(frozen=True, slots=True)
class NewSource:
    source: str


@dataclass(frozen=True, slots=True)
class NewFragment:
    fragment: MediaFragment
    #: For the packager: None to leave LL-HLS alone (out of step), else how to add it.
    hls: HlsStep | None


@dataclass(frozen=True, slots=True)
class HlsStep:
    wall: float
    restart: SegmentStart | None
    #: The part number and whether it started a segment, as the leader's packager had them.
    part: int
    starts: bool


Change = NewInit | NewSource | NewFragment


def follows(fragment: MediaFragment, last: MediaFragment) -> bool:
    """Whether ``fragment`` starts at or after the end of ``last`` on every track they share."""
    ends = {t.track_id: t.base_decode_time + t.duration for t in last.tracks}
    return all(t.base_decode_time >= ends[t.track_id] for t in fragment.tracks if t.track_id in ends)


def end_of(fragment: MediaFragment | None) -> int:
    """The latest end on ``fragment``'s first track (-1 for none): to compare two copies."""
    if fragment is None or not fragment.tracks:
        return -1
    track = fragment.tracks[0]
    return track.base_decode_time + track.duration


def hls_stamp(part: Part, start: SegmentStart | None) -> dict[str, object]:
    """What a program fragment entry says about its LL-HLS part (see :class:`HlsStep`)."""
    stamp: dict[str, object] = {"n": part.number}
    if start is not None:
        stamp["start"] = start.to_json()
    return stamp


class ProgramReplica:
    def __init__(self, *, max_box_size: int) -> None:
        self._max_box_size = max_box_size
        self._parser: Fmp4Parser | None = None
        self.init: InitSegment | None = None
        #: The last fragment read (on the program's timeline).
        self.last: MediaFragment | None = None
        #: The input ``last`` came from ("" for the slate) and how it was placed on the
        #: program's timeline: what a next leader needs to continue that input exactly.
        self.last_source = ""
        self.last_offsets: dict[int, int] | None = None
        self.last_publisher = ""
        #: Fragments skipped because they did not come after the last one (see :func:`follows`).
        self.stale = 0
        #: The highest leader epoch seen.
        self.epoch = 0
        #: Whether the packager fed from here is in step with the leader's.
        self.in_step = False

    def apply(self, entry: ProgramEntry) -> Change | None:
        """What ``entry`` changes (None: nothing to do). Raises ``cluster.bad_entry`` for an
        entry whose media does not parse (the replica then waits for the next init)."""
        self.epoch = max(self.epoch, entry.epoch)
        if entry.kind is ProgramKind.INIT:
            parser = Fmp4Parser(max_box_size=self._max_box_size)
            items = self._feed(parser, entry.data)
            if len(items) != 1 or not isinstance(items[0], InitSegment):
                self._parser = None
                raise ForumcastError("cluster.bad_entry", "a program init entry that is not one init segment")
            self._parser, self.init = parser, items[0]
            return NewInit(items[0])
        if entry.kind is ProgramKind.SWITCH:
            return NewSource(entry.source)
        if self._parser is None:
            return None  # started reading after the init: wait for one
        items = self._feed(self._parser, entry.data)
        if len(items) != 1 or not isinstance(items[0], MediaFragment):
            raise ForumcastError("cluster.bad_entry", "a program fragment entry that is not one fragment")
        fragment = items[0]
        if self.last is not None and not follows(fragment, self.last):
            self.stale += 1  # already past it (a leader resumed from an older copy): never backwards
            return None
        self.last, self.last_source, self.last_offsets = fragment, entry.source, entry.offsets
        self.last_publisher = entry.publisher
        return NewFragment(fragment, self._hls_step(entry, fragment))

    def _feed(self, parser: Fmp4Parser, data: bytes) -> list[object]:
        try:
            return list(parser.feed(data))
        except MediaError as exc:
            self._parser = None
            raise ForumcastError("cluster.bad_entry", f"program media does not parse: {exc}") from exc

    def _hls_step(self, entry: ProgramEntry, fragment: MediaFragment) -> HlsStep | None:
        stamp = entry.hls or {}
        try:
            part = int(stamp["n"])
            start = SegmentStart.from_json(stamp["start"]) if "start" in stamp else None
        except (KeyError, TypeError, ValueError):
            self.in_step = False
            log.warning("program fragment without a readable LL-HLS stamp: LL-HLS waits for the next")
            return None
        restart = None
        if not self.in_step:
            if start is None or not fragment.keyframe:
                return None
            restart = start
            self.in_step = True
        return HlsStep(entry.wall, restart, part, start is not None)

    def check(self, step: HlsStep, made: Part) -> None:
        """The packager made ``made`` of a fragment: out of step unless the leader's did the same."""
        if made.number != step.part or (made.index == 0) != step.starts:
            log.warning(
                "LL-HLS out of step with the leader (part %d, leader's %d): restarting at the next segment",
                made.number,
                step.part,
            )
            self.in_step = False


def add_to(packager: Packager, fragment: MediaFragment, step: HlsStep) -> Part:
    """Add ``fragment`` to a bare packager (the leader's shadow) as ``step`` says."""
    return packager.add(fragment, wall_time=step.wall, restart=step.restart)
