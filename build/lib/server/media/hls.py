"""LL-HLS packaging of a stage program: segments, partial segments and playlists, sans-I/O.

A :class:`Packager` is fed what a program sends its viewers (init segments, and fragments
already on the program's continuous timeline) and keeps a sliding window of segments from
which it renders the media playlist (RFC 8216bis, with the Low-Latency extensions) and the
multivariant playlist. It never sleeps or waits: the adapter in :mod:`server.live.hls`
holds blocking playlist reloads and preload-hinted part requests until
:meth:`Packager.has` says what they wait for exists.

- Every program fragment is one **partial segment**, ``INDEPENDENT=YES`` when it starts
  with a keyframe. Parts are named by a running number (``part/{n}.m4s``), so the preload
  hint for the next part is right whichever segment that part ends up in.
- A **segment** is a run of parts that starts at a keyframe fragment. One closes at the
  first keyframe fragment after it has reached the target duration, or earlier when the
  next GOP would take it past the target, or when its last part is short (a GOP that is not
  a whole number of fragments: only a segment's last part may be short). A source change
  or a re-init closes it at once; the next segment carries ``EXT-X-DISCONTINUITY`` (and,
  after a re-init, a new ``EXT-X-MAP``).
- ``EXT-X-TARGETDURATION`` is the configured target, raised (never lowered) to cover the
  longest segment made so far: a source whose GOP is longer than the target makes longer
  segments, and a playlist must never list a segment longer than its target duration.
  ``PART-TARGET`` likewise covers the longest part in the window.
- The window keeps ``window`` complete segments (and the parts of the one being made);
  older segments, their parts and init segments no longer referenced are dropped, and
  ``EXT-X-MEDIA-SEQUENCE`` / ``EXT-X-DISCONTINUITY-SEQUENCE`` advance with them.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime

from server.media.hls_parts import Part, Segment, SegmentStart
from server.media.types import InitSegment, MediaFragment, TrackKind

__all__ = ["MAX_AHEAD_SEGMENTS", "PART_TARGET", "TARGET_DURATION", "WINDOW", "Packager", "Part", "Segment",
           "SegmentStart"]  # fmt: skip

#: Default target segment duration, seconds.
TARGET_DURATION = 2.0
#: Default number of complete segments in the playlist.
WINDOW = 6
#: Default part target, seconds (publishers cut 200 ms fragments).
PART_TARGET = 0.2
#: Stands for each URI's query in a rendered playlist (a control character: never in a URI).
_QUERY = "\x00"
#: Seconds a segment's program date time may go back at a discontinuity.
OVERLAP = 0.5
#: Blocking requests may ask this many segments past the newest one (RFC 8216bis 6.2.5.2).
MAX_AHEAD_SEGMENTS = 2

#: Parts after the newest one a request may wait for (see :meth:`Packager.upcoming`).
HELD_PARTS_AHEAD = 3


class Packager:
    def __init__(
        self,
        *,
        target_duration: float = TARGET_DURATION,
        window: int = WINDOW,
        part_target: float = PART_TARGET,
        prefix: str = "",
    ) -> None:
        if target_duration <= 0 or window < 1 or part_target <= 0:
            raise ValueError("target_duration, window and part_target must be positive")
        self.target_duration = target_duration
        self.window = window
        #: Put before every media URI (a per-process epoch keeps cached URLs from colliding
        #: across restarts, when numbering starts over).
        self.prefix = prefix
        self._target = math.ceil(target_duration)
        self._part_target = part_target
        self.segments: deque[Segment] = deque()
        self.inits: dict[int, InitSegment] = {}
        self._init_number = 0
        self._next_msn = 0
        self._next_part = 0
        self._removed_discontinuities = 0
        self._pending_discontinuity = False
        self._version = 0  # counts changes of what the playlist shows
        self._rendered: dict[bool, tuple[int, str]] = {}
        self._gop = 0.0  # seconds between the last two keyframes
        self._since_keyframe = 0.0

    # -- input ------------------------------------------------------------------------------

    @property
    def init(self) -> InitSegment | None:
        return self.inits.get(self._init_number)

    def set_init(self, init: InitSegment) -> None:
        """A new init segment (the first, or a re-init): a new ``EXT-X-MAP`` from the next segment."""
        self._init_number += 1
        self._version += 1
        self.inits[self._init_number] = init
        self.discontinuity()

    def discontinuity(self) -> None:
        """The program's source changed: the next fragment starts a segment with a discontinuity."""
        self._close()
        self._pending_discontinuity = bool(self.segments)

    def start_of(self, part: Part) -> SegmentStart | None:
        """If ``part`` (just added) starts a segment: what another packager of the same
        program needs to start that segment exactly so (:meth:`add` with ``restart``)."""
        if part.index != 0:
            return None
        segment = self.segment(part.msn)
        if segment is None:
            return None
        before = self._removed_discontinuities
        for other in self.segments:
            if other is segment:
                break
            before += other.discontinuity
        return SegmentStart(
            msn=part.msn,
            part=part.number,
            init_number=segment.init,
            discontinuities=before,
            discontinuity=segment.discontinuity,
            target=self._target,
            gop=self._gop,
            date=segment.date,
        )

    def add(self, fragment: MediaFragment, *, wall_time: float, restart: SegmentStart | None = None) -> Part:
        """One program fragment, received at ``wall_time`` (Unix seconds); returns its part.

        ``restart``: the fragment starts a segment as another packager started it
        (:meth:`start_of` there): this packager drops its window and goes on from there,
        numbering, dating and cutting what follows exactly as that one does."""
        if restart is not None:
            self._restart(restart)
        init = self.init
        if init is None:
            raise ValueError("a fragment before any init segment")
        duration = _duration(fragment, init)
        open_ = self.segments[-1] if self.segments and not self.segments[-1].complete else None
        if fragment.keyframe:
            self._gop = self._since_keyframe or self._gop
            self._since_keyframe = 0.0
            if open_ is not None and (self._full(open_) or self._short_tail(open_)):
                self._close()
                open_ = None
        self._since_keyframe += duration
        if open_ is None:
            if not fragment.keyframe:
                raise ValueError("a segment must start at a keyframe fragment")
            date = fragment.producer_time if fragment.producer_time is not None else wall_time
            if self.segments:
                last = self.segments[-1]
                end = last.date + last.duration
                # Within one source the dates run on with the media. At a switch they are
                # set again from the new source's clock (a cut can leave the program's media
                # ahead of real time), going back at most OVERLAP and never past the middle
                # of the segment before (a date must not fall inside two whole segments).
                back = min(OVERLAP, last.duration / 2)
                date = max(date, end - back) if self._pending_discontinuity else end
            if restart is not None:
                date = restart.date
            open_ = Segment(self._next_msn, self._init_number, self._pending_discontinuity, date)
            self._next_msn += 1
            self._pending_discontinuity = False
            self.segments.append(open_)
        part = Part(self._next_part, open_.msn, len(open_.parts), duration, fragment.keyframe, fragment.data)
        self._next_part += 1
        self._version += 1
        open_.parts.append(part)
        return part

    def _restart(self, start: SegmentStart) -> None:
        init = self.init
        if init is None:
            raise ValueError("a restart before any init segment")
        self.segments.clear()
        self.inits = {start.init_number: init}
        self._init_number = start.init_number
        self._next_msn = start.msn
        self._next_part = start.part
        self._removed_discontinuities = start.discontinuities
        self._pending_discontinuity = start.discontinuity
        self._target = start.target
        self._gop = start.gop
        self._since_keyframe = 0.0
        self._version += 1

    def _full(self, segment: Segment) -> bool:
        """Whether ``segment`` should end before a keyframe fragment."""
        duration = segment.duration
        return duration >= self.target_duration - 1e-3 or duration + self._gop > self.target_duration + 1e-3

    def _short_tail(self, segment: Segment) -> bool:
        """Whether the segment's last part is shorter than 85% of the part target (a GOP
        that is not a whole number of fragments): only a segment's last part may be, so the
        segment ends there (RFC 8216bis 4.4.4.9)."""
        last = segment.parts[-1]
        return not last.independent and last.duration < 0.85 * self.part_target

    def _close(self) -> None:
        if self.segments and not self.segments[-1].complete:
            segment = self.segments[-1]
            segment.complete = True
            self._version += 1
            # EXTINF rounded to the nearest integer must not exceed the target duration.
            self._target = max(self._target, math.floor(segment.duration + 0.5))
            self._trim()

    def _trim(self) -> None:
        complete = [s for s in self.segments if s.complete]
        while len(complete) > self.window:
            gone = self.segments.popleft()
            complete.pop(0)
            self._removed_discontinuities += gone.discontinuity
        used = {s.init for s in self.segments} | {self._init_number}
        for number in [n for n in self.inits if n not in used]:
            del self.inits[number]

    # -- lookups ----------------------------------------------------------------------------

    def segment(self, msn: int) -> Segment | None:
        return next((s for s in self.segments if s.msn == msn), None)

    def part(self, number: int) -> Part | None:
        for segment in reversed(self.segments):
            if segment.parts and segment.parts[0].number <= number:
                index = number - segment.parts[0].number
                return segment.parts[index] if index < len(segment.parts) else None
        return None

    @property
    def playlist_target(self) -> int:
        """``EXT-X-TARGETDURATION`` as listed: the configured target rounded up, or more
        (a longer GOP). Blocking requests are held up to three of these (RFC 8216bis 6.2.5.2)."""
        return self._target

    @property
    def version(self) -> int:
        """Counts changes of what the playlists show: a rendered one holds while this stays."""
        return self._version

    @property
    def next_part_number(self) -> int:
        return self._next_part

    def upcoming(self, number: int, *, ahead: int = HELD_PARTS_AHEAD) -> bool:
        """Whether part ``number`` is not made yet but is about to be: the preload hint, or
        up to ``ahead - 1`` parts after it. Behind a front, a player's playlist may come from
        an instance a part or two ahead of the one its part request reaches; that request
        waits for the part (as for the hint) instead of being refused."""
        return self._next_part <= number < self._next_part + ahead

    def has(self, msn: int, part: int | None = None) -> bool:
        """Whether the playlist holds segment ``msn`` complete (``part`` None), or its part
        ``part``, or anything later (RFC 8216bis 6.2.5.2)."""
        newest = self.segments[-1] if self.segments else None
        if newest is None:
            return False
        if part is None:
            return any(s.complete and s.msn >= msn for s in self.segments)
        if newest.msn > msn:
            return True
        return newest.msn == msn and len(newest.parts) > part

    def too_far(self, msn: int) -> bool:
        """A blocking request further ahead than the spec lets a client ask."""
        return msn > self._next_msn - 1 + MAX_AHEAD_SEGMENTS  # past the newest segment + 2

    # -- playlists --------------------------------------------------------------------------

    @property
    def part_target(self) -> float:
        """The configured part target, or the longest part in the window if that is longer
        (a source with longer fragments: every listed part must fit, RFC 8216bis 4.4.3.7)."""
        longest = max((p.duration for s in self.segments for p in s.parts), default=0.0)
        return max(self._part_target, longest)

    def media_playlist(self, *, query: str = "", skip: bool = False) -> str:
        """The media playlist; ``query`` is appended to every URI (a closed stage's ``token=…``);
        ``skip``: a delta update (``_HLS_skip=YES``) leaving out what may be skipped.

        Rendered once per change of the window (every player asks for the same state, a
        closed stage's each with its own ``token``); the query goes into a placeholder."""
        cached = self._rendered.get(skip)
        if cached is None or cached[0] != self._version:
            cached = (self._version, self._render(skip))
            self._rendered[skip] = cached
        return cached[1].replace(_QUERY, f"?{query}" if query else "")

    def _render(self, skip: bool) -> str:
        q = _QUERY
        part_target = _decimal(self.part_target)
        skip_until = 6 * self._target
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:9",
            f"#EXT-X-TARGETDURATION:{self._target}",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
            f"PART-HOLD-BACK={_decimal(3 * self.part_target)},CAN-SKIP-UNTIL={_decimal(skip_until)}",
            f"#EXT-X-PART-INF:PART-TARGET={part_target}",
            f"#EXT-X-MEDIA-SEQUENCE:{self.segments[0].msn if self.segments else self._next_msn}",
        ]
        segments = list(self.segments)
        # The first listed segment's discontinuity is counted in the sequence number rather
        # than tagged (a tag there would count twice).
        first_discontinuity = bool(segments) and segments[0].discontinuity
        sequence = self._removed_discontinuities + first_discontinuity
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{sequence}")
        skipped = 0
        if skip:
            total = sum(s.duration for s in segments)
            elapsed = 0.0
            for segment in segments:
                # Skippable: wholly older than CAN-SKIP-UNTIL from the playlist's end.
                if not segment.complete or total - (elapsed + segment.duration) < skip_until:
                    break
                elapsed += segment.duration
                skipped += 1
            if skipped:
                lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
        last_map: int | None = segments[skipped - 1].init if skipped else None
        for segment in segments[skipped:]:
            if segment.discontinuity and segment is not segments[0]:
                lines.append("#EXT-X-DISCONTINUITY")
            if segment.init != last_map:
                lines.append(f'#EXT-X-MAP:URI="{self.prefix}init/{segment.init}.mp4{q}"')
                last_map = segment.init
            stamp = datetime.fromtimestamp(segment.date, UTC).isoformat(timespec="milliseconds")
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp}")
            for part in segment.parts:
                independent = ",INDEPENDENT=YES" if part.independent else ""
                lines.append(
                    f'#EXT-X-PART:DURATION={_decimal(part.duration)},URI="{self.prefix}part/{part.number}.m4s{q}"{independent}'
                )
            if segment.complete:
                lines.append(f"#EXTINF:{_decimal(segment.duration)},")
                lines.append(f"{self.prefix}seg/{segment.msn}.m4s{q}")
        if segments:
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{self.prefix}part/{self._next_part}.m4s{q}"')
        return "\n".join(lines) + "\n"

    def multivariant_playlist(self, *, query: str = "") -> str:
        """One variant: the program, with the codecs and resolution of the current init."""
        init = self.init
        q = f"?{query}" if query else ""
        attributes = [f"BANDWIDTH={self.peak_bandwidth()}"]
        if init is not None:
            codecs = ",".join(t.codec for t in init.tracks if t.kind is not TrackKind.OTHER)
            attributes.append(f'CODECS="{codecs}"')
            video = init.video
            if video is not None and video.width and video.height:
                attributes.append(f"RESOLUTION={video.width}x{video.height}")
        return "\n".join(
            [
                "#EXTM3U",
                "#EXT-X-VERSION:9",
                "#EXT-X-INDEPENDENT-SEGMENTS",
                f"#EXT-X-STREAM-INF:{','.join(attributes)}",
                f"media.m3u8{q}",
                "",
            ]
        )

    def peak_bandwidth(self) -> int:
        """Bits per second of the densest complete segment in the window (a default before any)."""
        rates = [
            sum(len(p.data) for p in s.parts) * 8 / s.duration  # sizes only: no join per request
            for s in self.segments
            if s.complete and s.duration > 0
        ]
        return round(max(rates, default=2_000_000))


def _duration(fragment: MediaFragment, init: InitSegment) -> float:
    """A fragment's duration: its video track's, else its longest track's."""
    best = 0.0
    for traf in fragment.tracks:
        track = init.track(traf.track_id)
        if track is None or track.timescale <= 0:
            continue
        seconds = traf.duration / track.timescale
        if track.kind is TrackKind.VIDEO:
            return seconds
        best = max(best, seconds)
    return best


def _decimal(value: float) -> str:
    """A decimal-floating-point attribute: at most three decimals, no exponent."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"
