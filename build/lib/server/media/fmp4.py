"""The incremental fragmented-MP4 parser: bytes in any chunking in, init segments and media
fragments out.

This module owns the stream grammar and its state machine (what may follow what, what is
kept, what is dropped, when a fragment is complete) and the reading of ``moof`` boxes into
:mod:`server.media.types` values. Box framing, field bounds and what a ``moov`` says about
its tracks live in :mod:`server.media.boxes`.

The grammar, box by box at the top level::

    init      = ftyp [free|skip]* moov                -> InitSegment (ftyp + moov)
    fragment  = [styp|prft|emsg]* moof mdat+           -> MediaFragment ([styp…] moof mdat…)
    dropped   = sidx | free | skip | mfra between units; an extra mdat after a fragment

A new ``ftyp`` + ``moov`` later in the stream is a new init segment (a publisher changed
its encoder settings). A fragment is emitted as soon as the mdat holding the last byte its
``trun`` boxes reference has arrived (the end of the mdat when sample sizes are unknown).

The parser is sans-I/O: it never blocks and never reads a socket. It holds at most one
partial box, whose size it checks against ``max_box_size`` from the header alone, plus
the complete boxes of the fragment being assembled (each of them bounded the same way).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from server.errors import MediaError
from server.media.boxes import (
    HEADER_SIZE,
    MAX_HEADER_SIZE,
    Box,
    Reader,
    child_map,
    parse_tracks,
    read_header,
)
from server.media.types import InitSegment, MediaFragment, TrackFragment, TrackKind

#: Default for ``max_box_size``: 16 MiB holds several seconds of 1080p video in one mdat.
DEFAULT_MAX_BOX_SIZE = 16 * 2**20

NTP_TO_UNIX = 2_208_988_800  # seconds from 1900 (NTP, in prft) to 1970
_NON_SYNC = 0x10000  # sample_is_non_sync_sample in sample flags
_PREFIX = frozenset({"styp", "prft", "emsg"})
_DROPPED = frozenset({"free", "skip", "sidx", "mfra"})


class State(enum.Enum):
    EXPECT_INIT = "expect_init"  # nothing relayable yet: an ftyp must come first
    EXPECT_MOOV = "expect_moov"  # the ftyp arrived, its moov comes next
    EXPECT_FRAGMENT = "expect_fragment"  # between fragments (or before a new init)
    IN_FRAGMENT = "in_fragment"  # a moof arrived; waiting for the mdat bytes it references
    FAILED = "failed"  # an error was raised; every later feed raises it again


Item = InitSegment | MediaFragment


class Fmp4Parser:
    """Split a fragmented MP4 byte stream into :class:`InitSegment` and :class:`MediaFragment`.

    ``max_box_size`` (default 16 MiB) bounds every top-level box, header included: a larger
    one is refused with ``media.box_too_large`` as soon as its header is read, before any
    of its body is buffered. It also bounds the boxes kept before a moof and the sample
    data one moof may reference.
    """

    def __init__(self, *, max_box_size: int = DEFAULT_MAX_BOX_SIZE) -> None:
        if max_box_size < 4 * MAX_HEADER_SIZE:
            raise ValueError("max_box_size must allow at least a few box headers")
        self.max_box_size = max_box_size
        self._state = State.EXPECT_INIT
        self._init: InitSegment | None = None
        self._error: MediaError | None = None
        self._position = 0  # stream offset of the box being read
        self._header = bytearray()  # a box header split across chunks
        self._box: Box | None = None  # the box being read, once its header is known
        self._keep = False  # buffer its bytes (True) or skip them (a dropped box)
        self._body = bytearray()  # the kept box so far, header included
        self._have = 0  # bytes of the current box consumed so far
        self._ftyp = b""
        self._parts: list[bytes] = []  # the fragment being assembled: prefix, moof, mdats
        self._prefix_size = 0
        self._producer_time: float | None = None
        self._moof: _Moof | None = None
        self._covered = 0  # bytes from the moof start to the end of the last mdat received
        self._after_fragment = False  # an mdat now is trailing data of the last fragment

    @property
    def state(self) -> State:
        return self._state

    @property
    def init(self) -> InitSegment | None:
        """The init segment in force (the last one parsed)."""
        return self._init

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete box: at most ``max_box_size``."""
        return len(self._header) + len(self._body)

    def feed(self, data: bytes) -> list[Item]:
        """Consume ``data`` and return what it completed, in stream order.

        Raises :class:`MediaError` on the first malformed box. The parser is then FAILED,
        items completed earlier in the same call are not returned (the publisher's stream
        is unusable from there on), and every later call raises the same code.
        """
        if self._error is not None:
            raise MediaError(self._error.code, f"the stream already failed: {self._error.message}")
        items: list[Item] = []
        try:
            self._consume(memoryview(data), items)
        except MediaError as exc:
            self._state = State.FAILED
            self._error = exc
            raise
        return items

    def close(self) -> None:
        """The stream ended: raise ``media.truncated_box`` if it stopped inside a box, an init
        segment or a fragment (so a caller that fed a whole file learns it was cut short)."""
        partial = self._box is not None or self._header or self._parts
        if self._error is None and (partial or self._state in (State.EXPECT_MOOV, State.IN_FRAGMENT)):
            self._error = MediaError(
                "media.truncated_box", f"the stream ended inside a unit at byte {self._position}"
            )
            self._state = State.FAILED
            raise self._error

    def _consume(self, view: memoryview, items: list[Item]) -> None:
        pos, end = 0, len(view)
        while pos < end:
            box = self._box
            if box is None and not self._header:
                whole = read_header(view, pos, end, origin=self._position - pos)
                if whole is not None and whole.size <= end - pos:  # a whole box in this chunk: no copy
                    keep = self._check(whole)
                    pos += whole.size
                    self._position += whole.size
                    if keep:
                        self._finish(whole, bytes(view[pos - whole.size : pos]), items)
                    continue
            if box is None:
                # Take 8 header bytes, then 8 more only if size == 1, so that a short box
                # never swallows the start of the next one.
                header = self._header
                need = (HEADER_SIZE if len(header) < HEADER_SIZE else MAX_HEADER_SIZE) - len(header)
                header += view[pos : pos + need]
                pos += min(need, end - pos)
                box = read_header(header, 0, len(header), origin=self._position)
                if box is None:
                    continue
                self._keep = self._check(box)
                self._box, self._have = box, len(header)
                if self._keep:
                    self._body += header
                header.clear()
            take = min(box.size - self._have, end - pos)
            if self._keep:
                self._body += view[pos : pos + take]
            pos += take
            self._have += take
            if self._have == box.size:
                body = bytes(self._body)
                self._body.clear()
                self._box = None
                self._position += box.size
                if self._keep:
                    self._finish(box, body, items)

    def _check(self, box: Box) -> bool:
        """A header is complete: refuse it now if it is too large or out of place; say
        whether its bytes are kept (True) or dropped."""
        kind, at, state = box.type, f"{box.type!r} box at byte {self._position}", self._state
        if box.size > self.max_box_size:
            raise MediaError("media.box_too_large", f"{at} is {box.size} bytes, over {self.max_box_size}")
        if state is State.IN_FRAGMENT:
            # Nothing may be dropped between a moof and its mdat: trun offsets count from the moof.
            if kind == "mdat":
                return True
            if self._covered:  # an mdat came but did not hold every referenced byte
                raise MediaError(
                    "media.bad_fragment", f"a trun references bytes past the mdat before the {at}"
                )
            raise MediaError("media.unexpected_box", f"{at}: a moof must be followed by an mdat")
        if kind == "mdat" and self._after_fragment:
            return False  # unreferenced trailing data of the last fragment
        self._after_fragment = False
        if kind in ("free", "skip") or (kind in _DROPPED and state is State.EXPECT_FRAGMENT):
            return False
        if (state, kind) in ((State.EXPECT_INIT, "ftyp"), (State.EXPECT_MOOV, "moov")):
            return True
        if state is State.EXPECT_FRAGMENT:
            if kind == "moof" or kind in _PREFIX or (kind == "ftyp" and not self._parts):
                return True
            if kind == "mdat":
                raise MediaError("media.unexpected_box", f"{at} has no moof before it")
        elif kind in _PREFIX or kind in ("moof", "mdat", "sidx"):
            raise MediaError("media.fragment_before_init", f"{at} comes before a complete init segment")
        raise MediaError("media.unexpected_box", f"{at} is not expected in state {state.value}")

    def _finish(self, box: Box, data: bytes, items: list[Item]) -> None:
        kind = box.type
        if kind == "ftyp":
            self._ftyp = data
            self._state = State.EXPECT_MOOV
        elif kind == "moov":
            self._init = InitSegment(self._ftyp + data, parse_tracks(data, box.header_size))
            items.append(self._init)
            self._state = State.EXPECT_FRAGMENT
        elif kind in _PREFIX:
            self._prefix_size += len(data)
            if self._prefix_size > self.max_box_size:
                raise MediaError(
                    "media.box_too_large", f"over {self.max_box_size} bytes of boxes before a moof"
                )
            if kind == "prft":
                self._producer_time = _producer_time(data, box.header_size)
            self._parts.append(data)
        elif kind == "moof":
            assert self._init is not None  # _check lets a moof through only after an init
            self._moof = _parse_moof(data, box.header_size, self._init, self._prefix_size)
            if self._moof.data_end - len(data) > self.max_box_size:
                raise MediaError(
                    "media.box_too_large", f"the moof at byte {self._position} references too much data"
                )
            self._parts.append(data)
            self._state = State.IN_FRAGMENT
        else:
            self._on_mdat(box, data, items)

    def _on_mdat(self, box: Box, data: bytes, items: list[Item]) -> None:
        moof, init = self._moof, self._init
        assert moof is not None and init is not None
        if not self._covered:
            self._covered = moof.size
            if moof.data_start < moof.size + box.header_size:
                raise MediaError("media.bad_fragment", "a trun data_offset points before the mdat payload")
        self._covered += box.size
        self._parts.append(data)
        if moof.data_end > self._covered and moof.sizes_known:
            return  # the samples continue in a following mdat
        keyframe = True
        if init.video is not None:
            video = next((t for t in moof.tracks if t.track_id == init.video.id), None)
            keyframe = video is not None and video.keyframe
        fragment = MediaFragment(
            data=b"".join(self._parts),
            sequence_number=moof.sequence_number,
            tracks=moof.tracks,
            keyframe=keyframe,
            moof_offset=self._prefix_size,
            mfhd_offset=moof.mfhd_offset,
            producer_time=self._producer_time,
        )
        items.append(fragment)
        self._parts, self._prefix_size, self._producer_time = [], 0, None
        self._moof, self._covered = None, 0
        self._after_fragment = True
        self._state = State.EXPECT_FRAGMENT


def _producer_time(data: bytes, header_size: int) -> float:
    r = Reader(data, Box("prft", 0, len(data), header_size))
    r.full_header()
    r.u32()  # reference_track_ID
    ntp = r.u64()
    return (ntp >> 32) - NTP_TO_UNIX + (ntp & 0xFFFFFFFF) / 2**32


def _one(found: dict[str, list[Box]], kind: str, parent: str) -> Box:
    if kind not in found:
        raise MediaError("media.bad_fragment", f"{parent!r} box has no {kind!r}")
    return found[kind][0]


@dataclass(slots=True)
class _Moof:
    """What the parser needs from a moof: its values and the byte range its samples use."""

    size: int
    sequence_number: int = 0
    mfhd_offset: int = 0
    tracks: tuple[TrackFragment, ...] = ()
    data_start: int = 2**63  # first referenced byte, from the moof start
    data_end: int = 0  # one past the last referenced byte, from the moof start
    sizes_known: bool = True  # False: some sample sizes are unknown, the first mdat holds them


def _parse_moof(data: bytes, header_size: int, init: InitSegment, base: int) -> _Moof:
    """Read a moof (``data`` is the whole box); ``base`` is its offset in the fragment data."""
    moof = _Moof(len(data))
    found = child_map(data, Box("moof", 0, len(data), header_size))
    mfhd = _one(found, "mfhd", "moof")
    r = Reader(data, mfhd)
    r.full_header()
    moof.sequence_number = r.u32()
    moof.mfhd_offset = base + mfhd.offset
    tracks: list[TrackFragment] = []
    cursor = 0  # where a traf without an explicit base starts: after the previous one's data
    for traf in found.get("traf", []):
        fragment, cursor = _parse_traf(data, traf, init, base, cursor, moof)
        if any(t.track_id == fragment.track_id for t in tracks):
            raise MediaError("media.bad_fragment", f"two trafs for track {fragment.track_id} in one moof")
        tracks.append(fragment)
    if not tracks:
        raise MediaError("media.bad_fragment", "the moof has no traf")
    moof.tracks = tuple(tracks)
    return moof


def _parse_traf(
    data: bytes, traf: Box, init: InitSegment, base: int, cursor: int, moof: _Moof
) -> tuple[TrackFragment, int]:
    found = child_map(data, traf)
    r = Reader(data, _one(found, "tfhd", "traf"))
    _, flags = r.full_header()
    track_id = r.u32()
    track = init.track(track_id)
    if track is None:
        raise MediaError("media.bad_fragment", f"a traf for track {track_id}, which the init segment lacks")
    if flags & 0x1:
        # Absolute stream positions cannot survive relaying: a viewer's stream starts elsewhere.
        raise MediaError("media.bad_fragment", "tfhd uses base-data-offset; mux with default_base_moof")
    if flags & 0x2:
        r.u32()  # sample_description_index
    duration = r.u32() if flags & 0x8 else track.default_sample_duration
    size = r.u32() if flags & 0x10 else track.default_sample_size
    sample_flags = r.u32() if flags & 0x20 else track.default_sample_flags
    sizes_known = bool(flags & 0x10) or size > 0
    # The data base is the moof start with default-base-is-moof (and for the first traf);
    # without it, a later traf's data starts where the previous traf's data ended.
    origin = cursor = 0 if flags & 0x20000 else cursor
    if "tfdt" not in found:
        raise MediaError("media.missing_tfdt", f"the traf of track {track_id} has no tfdt")
    tfdt = found["tfdt"][0]
    r = Reader(data, tfdt)
    version, _ = r.full_header()
    if version > 1:
        raise MediaError("media.bad_fragment", f"tfdt version {version} is unknown")
    decode_time = r.u64() if version == 1 else r.u32()
    count = total = 0
    keyframe: bool | None = None
    for trun in found.get("trun", []):
        r = Reader(data, trun)
        _, trun_flags = r.full_header()  # v1 only makes composition offsets signed
        samples = r.u32()
        start = origin + r.i32() if trun_flags & 0x1 else cursor
        first_flags = r.u32() if trun_flags & 0x4 else None
        fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if trun_flags & bit]
        if samples * 4 * len(fields) > r.remaining:
            raise MediaError(
                "media.truncated_box", f"trun of track {track_id} is shorter than its {samples} samples"
            )
        per_sample: dict[int, tuple[int, ...]] = {}
        if fields and samples:
            table = struct.iter_unpack(
                ">" + "I" * len(fields), data[r.pos : r.pos + samples * 4 * len(fields)]
            )
            per_sample = dict(zip(fields, zip(*table, strict=True), strict=True))
        total += sum(per_sample[0x100]) if 0x100 in per_sample else samples * duration
        run_size = sum(per_sample[0x200]) if 0x200 in per_sample else samples * size
        moof.sizes_known &= 0x200 in per_sample or sizes_known or samples == 0
        if samples and keyframe is None:
            first = first_flags if first_flags is not None else per_sample.get(0x400, (sample_flags,))[0]
            keyframe = not first & _NON_SYNC
        if samples and run_size:
            moof.data_start = min(moof.data_start, start)
            moof.data_end = max(moof.data_end, start + run_size)
        count += samples
        cursor = start + run_size
    if track.kind is not TrackKind.VIDEO:
        keyframe = True  # audio (and text) samples all decode alone, whatever the flags say
    fragment = TrackFragment(
        track_id=track_id,
        base_decode_time=decode_time,
        sample_count=count,
        duration=total,
        keyframe=bool(keyframe),
        tfdt_offset=base + tfdt.offset,
        tfdt_version=version,
    )
    return fragment, cursor


def split_clip(
    data: bytes, *, max_box_size: int = DEFAULT_MAX_BOX_SIZE
) -> tuple[InitSegment, list[MediaFragment]]:
    """A whole fMP4 clip as its first init segment and its fragments (``media.*`` if it is not one)."""
    items = Fmp4Parser(max_box_size=max_box_size).feed(data)
    if not items or not isinstance(items[0], InitSegment):
        raise MediaError("media.bad_init", "the clip does not start with an init segment (ftyp + moov)")
    return items[0], [item for item in items[1:] if isinstance(item, MediaFragment)]
