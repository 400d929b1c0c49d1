"""Patching a parsed fragment's timestamps: ``tfdt`` per track and the ``mfhd`` sequence number.

This module owns the byte surgery only. Which values to write (where a switched-in source
lands on the program timeline, how a looped clip continues) is decided by
:mod:`server.media.timeline` and its callers; this module writes what it is told.

The offsets :class:`~server.media.types.MediaFragment` records let the common case patch
fields in place without walking the boxes again. One case changes the layout: a 32-bit
(version 0) ``tfdt`` that must hold a time of 2**32 or more is upgraded to version 1,
which makes it 4 bytes longer. Then every box that encloses it (``traf``, ``moof``) grows
by 4, and every ``trun`` data_offset that counts from the moof start moves by 4 per
upgraded tfdt, because the mdat after the moof moved that far. A later traf without
default-base-is-moof counts from the previous traf's data, which moved too, and keeps its
offsets; the parser refuses absolute base-data-offsets; a fragment with ``saio`` offsets
(encrypted media) is refused rather than grown. A ``prft``'s media time and an ``emsg``'s
presentation time in the prefix keep the source's values (MSE ignores both).

The output is assembled with one ``b"".join`` of memoryview slices of the input and the
patched fields, so a rewrite copies the fragment's bytes once.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping

from server.errors import MediaError
from server.media.boxes import Box, Reader, child_map, read_header
from server.media.fmp4 import NTP_TO_UNIX
from server.media.types import InitSegment, MediaFragment, TrackFragment

_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_TFDT_GROWTH = 8 - 4  # a 64-bit time replaces a 32-bit one
_DEFAULT_BASE_IS_MOOF = 0x20000  # tfhd flag


def rewrite_fragment(
    fragment: MediaFragment, *, decode_times: Mapping[int, int], sequence_number: int
) -> MediaFragment:
    """A copy of ``fragment`` whose tracks named in ``decode_times`` (track id → time in the
    track's timescale) start at those times, numbered ``sequence_number``.

    Tracks not named keep their times. Every other byte is unchanged, except for the sizes
    and data offsets a v0 → v1 tfdt upgrade must adjust. A time or sequence number that
    cannot be written (negative, or too large even for 64 bits) is a caller's bug:
    :class:`ValueError`.
    """
    if not 0 <= sequence_number < 2**32:
        raise ValueError(f"sequence number {sequence_number} does not fit 32 bits")
    for track_id, value in decode_times.items():
        if not 0 <= value < 2**64:
            raise ValueError(f"decode time {value} of track {track_id} does not fit 64 bits")
    data = fragment.data
    # (start, end, replacement) triples over the input, applied in order of start.
    patches: list[tuple[int, int, bytes]] = []
    field = _box_at(data, fragment.mfhd_offset, "mfhd").body + 4  # after version and flags
    patches.append((field, field + 4, _U32.pack(sequence_number)))
    upgraded: list[int] = []  # tfdt offsets (in the input) that grow to version 1
    tracks: list[TrackFragment] = []
    for traf in fragment.tracks:
        time = decode_times.get(traf.track_id)
        if time is None:
            tracks.append(traf)
            continue
        tfdt = _box_at(data, traf.tfdt_offset, "tfdt")
        field = tfdt.body + 4
        if traf.tfdt_version == 1:
            patches.append((field, field + 8, _U64.pack(time)))
        elif time < 2**32:
            patches.append((field, field + 4, _U32.pack(time)))
        else:
            upgraded.append(traf.tfdt_offset)
            # Size +4, version 1, same flags; then the 64-bit time where the 32-bit one was.
            patches.append(_size_patch(tfdt, _TFDT_GROWTH))
            patches.append((tfdt.body, tfdt.body + 1, b"\x01"))
            patches.append((field, field + 4, _U64.pack(time)))
        tracks.append(dataclasses.replace(traf, base_decode_time=time))
    if upgraded:
        patches += _growth_patches(data, fragment.moof_offset, upgraded)
        tracks = [_moved(traf, upgraded) for traf in tracks]
    return dataclasses.replace(
        fragment,
        data=_apply(data, patches),
        sequence_number=sequence_number,
        tracks=tuple(tracks),
    )


def _moved(traf: TrackFragment, upgraded: list[int]) -> TrackFragment:
    """``traf`` with its tfdt offset (and version, if it grew) as they are in the output."""
    shift = _TFDT_GROWTH * sum(1 for offset in upgraded if offset < traf.tfdt_offset)
    version = 1 if traf.tfdt_offset in upgraded else traf.tfdt_version
    return dataclasses.replace(traf, tfdt_offset=traf.tfdt_offset + shift, tfdt_version=version)


def _growth_patches(data: bytes, moof_offset: int, upgraded: list[int]) -> list[tuple[int, int, bytes]]:
    """The size and data-offset patches that upgrading the tfdts at ``upgraded`` requires."""
    growth = _TFDT_GROWTH * len(upgraded)
    moof = _box_at(data, moof_offset, "moof")
    patches = [_size_patch(moof, growth)]
    for index, traf in enumerate(child_map(data, moof).get("traf", [])):
        found = child_map(data, traf)
        if any(tfdt.offset in upgraded for tfdt in found.get("tfdt", [])):
            patches.append(_size_patch(traf, _TFDT_GROWTH))
        if "saio" in found:
            # saio offsets may point into the moof itself (CENC's senc), on either side of
            # the inserted bytes; growing such a fragment is not supported.
            raise MediaError("media.bad_fragment", "cannot grow a tfdt in a fragment with saio offsets")
        tfhd = Reader(data, found["tfhd"][0])
        _, tfhd_flags = tfhd.full_header()
        if index > 0 and not tfhd_flags & _DEFAULT_BASE_IS_MOOF:
            # Its base is where the previous traf's data ends, which moved with the mdat.
            continue
        for trun in found.get("trun", []):
            r = Reader(data, trun)
            _, flags = r.full_header()
            r.u32()  # sample_count
            if flags & 0x1:  # data-offset-present: it counts from the moof start
                offset = r.pos
                moved = _I32.unpack_from(data, offset)[0] + growth
                if moved >= 2**31:
                    raise MediaError(
                        "media.bad_fragment", "a trun data_offset overflows after growing the moof"
                    )
                patches.append((offset, offset + 4, _I32.pack(moved)))
    return patches


def _box_at(data: bytes, offset: int, kind: str) -> Box:
    box = read_header(data, offset, len(data))
    if box is None or box.type != kind or box.end > len(data):
        raise MediaError("media.bad_fragment", f"the fragment's recorded {kind} offset {offset} is wrong")
    return box


def _size_patch(box: Box, growth: int) -> tuple[int, int, bytes]:
    if box.header_size == 16:  # a 64-bit largesize
        end = box.offset + 16
        return (box.offset + 8, end, _U64.pack(box.size + growth))
    if box.size + growth >= 2**32:
        raise MediaError("media.box_too_large", f"{box.type!r} would outgrow its 32-bit size")
    return (box.offset, box.offset + 4, _U32.pack(box.size + growth))


def _apply(data: bytes, patches: list[tuple[int, int, bytes]]) -> bytes:
    """``data`` with each ``[start:end)`` replaced, in one allocation of the result."""
    view = memoryview(data)
    pieces: list[bytes | memoryview] = []
    cursor = 0
    for start, end, replacement in sorted(patches, key=lambda patch: patch[0]):
        if start < cursor:
            raise MediaError(
                "media.bad_fragment", "two patched fields overlap: the recorded offsets are wrong"
            )
        pieces.append(view[cursor:start])
        pieces.append(replacement)
        cursor = end
    pieces.append(view[cursor:])
    return b"".join(pieces)


#: prft flags: the time is when the fragment was written to the transport (ISO/IEC 14496-12).
PRFT_WRITTEN = 0x000004


def stamp_producer_time(fragment: MediaFragment, init: InitSegment, wall_time: float) -> MediaFragment:
    """``fragment`` with a ``prft`` saying ``wall_time`` (Unix seconds): patched in place when
    the fragment has one, otherwise put in front of the ``moof``.

    Inserting before the moof is safe: with ``default-base-is-moof`` every sample offset
    counts from the moof, so only the offsets :class:`MediaFragment` records move.
    """
    ntp = round((wall_time + NTP_TO_UNIX) * 2**32)
    data = bytearray(fragment.data)
    offset = 0
    while offset + 8 <= fragment.moof_offset:
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size < 8:
            break
        if kind == b"prft":
            struct.pack_into(">I", data, offset + 8, (data[offset + 8] << 24) | PRFT_WRITTEN)
            struct.pack_into(">Q", data, offset + 16, ntp)
            return dataclasses.replace(fragment, data=bytes(data), producer_time=wall_time)
        offset += size
    video = init.video
    reference = fragment.track(video.id) if video is not None else None
    reference = reference or fragment.tracks[0]
    box = struct.pack(
        ">I4sIIQQ", 32, b"prft", (1 << 24) | PRFT_WRITTEN, reference.track_id, ntp, reference.base_decode_time
    )
    shift = len(box)
    return dataclasses.replace(
        fragment,
        data=box + fragment.data,
        moof_offset=fragment.moof_offset + shift,
        mfhd_offset=fragment.mfhd_offset + shift,
        tracks=tuple(dataclasses.replace(t, tfdt_offset=t.tfdt_offset + shift) for t in fragment.tracks),
        producer_time=wall_time,
    )
