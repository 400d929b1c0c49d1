"""One continuous decode timeline out of sources that start, stop, loop and change.

A :class:`Timeline` rewrites every fragment it places (tfdt per track, mfhd sequence
number) so that what leaves it never has a gap larger than one frame and never goes
backwards, whatever the sources did: a publisher reconnecting with timestamps from zero, a
demo clip looping, a producer switching inputs. Each track keeps its own timescale.

At a splice every track of the new source moves by the *same* amount of time (so audio
and video stay in sync): the new source's earliest track start is placed at the latest
end of any output track. A track that would then go backwards by a sample is nudged
forward to its own end, which bounds the A/V offset a splice can add to one sample.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from server.media.rewrite import rewrite_fragment
from server.media.types import InitSegment, MediaFragment


@dataclass(slots=True)
class _Segment:
    """The mapping in force since the last splice."""

    shift: Fraction | None = None  # seconds added to the source's times (None: not known yet)
    offsets: dict[int, int] = field(default_factory=dict)  # per track, in its timescale


class Timeline:
    def __init__(self) -> None:
        self._ends: dict[int, tuple[int, int]] = {}  # track id -> (end time, timescale)
        self._segment = _Segment(shift=Fraction(0))  # the first source passes through
        self._sequence = 0

    @property
    def sequence_number(self) -> int:
        return self._sequence

    def end_seconds(self) -> Fraction:
        """The latest end of any output track so far, in seconds."""
        return max((Fraction(end, scale) for end, scale in self._ends.values()), default=Fraction(0))

    def continue_after(self, fragment: MediaFragment, init: InitSegment) -> None:
        """Carry on after ``fragment``, the last one placed on this output timeline by
        someone else (another instance that made the program before): the next fragment is
        placed at its end, with the sequence number after its own, as after a splice."""
        self._ends = {
            traf.track_id: (traf.base_decode_time + traf.duration, self._timescale(init, traf.track_id))
            for traf in fragment.tracks
        }
        self._sequence = fragment.sequence_number
        self.splice()

    def splice(self) -> None:
        """The next placed fragment starts a new source (or the same one from its start)."""
        self._segment = _Segment()

    @property
    def offsets(self) -> dict[int, int]:
        """What the source on air is moved by, per track (in its timescale): with the source's
        own decode times, all another placer needs to go on exactly where this one stopped."""
        return dict(self._segment.offsets)

    def follow(self, offsets: dict[int, int]) -> None:
        """Place the next fragments with ``offsets`` (another placer's :attr:`offsets` for the
        same source): after :meth:`continue_after`, the same source continues unspliced."""
        self._segment = _Segment(shift=Fraction(0), offsets=dict(offsets))

    def fits(self, fragment: MediaFragment) -> int:
        """Where ``fragment`` would land under the offsets in force: -1 before the end of what
        was placed (already out), 0 exactly at it on every track, 1 after a gap (or on a
        track the offsets do not cover)."""
        verdict = 0
        for traf in fragment.tracks:
            offset, end = self._segment.offsets.get(traf.track_id), self._ends.get(traf.track_id)
            if offset is None or end is None:
                return 1
            start = traf.base_decode_time + offset
            if start < end[0]:
                return -1
            if start > end[0]:
                verdict = 1
        return verdict

    def place(self, fragment: MediaFragment, init: InitSegment) -> MediaFragment:
        """``fragment`` moved onto the output timeline (a new object; the input is untouched)."""
        segment = self._segment
        if segment.shift is None:
            starts = [
                Fraction(t.base_decode_time, self._timescale(init, t.track_id)) for t in fragment.tracks
            ]
            segment.shift = self.end_seconds() - min(starts, default=Fraction(0))
        times: dict[int, int] = {}
        for traf in fragment.tracks:
            scale = self._timescale(init, traf.track_id)
            offset = segment.offsets.get(traf.track_id)
            if offset is None:
                offset = round(segment.shift * scale)
                end = self._end_in(traf.track_id, scale)
                if end is not None and traf.base_decode_time + offset < end:
                    offset = end - traf.base_decode_time  # never backwards
                if traf.base_decode_time + offset < 0:
                    # A track that starts before the one the shift was taken from (its
                    # first fragment came later): never before the timeline's zero.
                    offset = -traf.base_decode_time
                segment.offsets[traf.track_id] = offset
            times[traf.track_id] = traf.base_decode_time + offset
            self._ends[traf.track_id] = (times[traf.track_id] + traf.duration, scale)
        self._sequence += 1
        return rewrite_fragment(fragment, decode_times=times, sequence_number=self._sequence)

    def _end_in(self, track_id: int, scale: int) -> int | None:
        if track_id not in self._ends:
            return None
        end, old_scale = self._ends[track_id]
        if old_scale == scale:
            return end
        return -(-end * scale // old_scale)  # ceiling: rounding must not step backwards

    @staticmethod
    def _timescale(init: InitSegment, track_id: int) -> int:
        track = init.track(track_id)
        return track.timescale if track is not None and track.timescale > 0 else 1


def loop_fragments(
    init: InitSegment, fragments: Sequence[MediaFragment], passes: int | None = None
) -> Iterator[MediaFragment]:
    """``passes`` passes over a clip (``None``: forever), each spliced onto the last."""
    timeline = Timeline()
    done = 0
    while passes is None or done < passes:
        timeline.splice()
        done += 1
        for fragment in fragments:
            yield timeline.place(fragment, init)
