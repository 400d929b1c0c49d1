"""H.264 parameter sets carried in band, for players that never re-read an init segment.

A program switch can change the decoder configuration (another encoder's SPS/PPS, another
resolution). Browsers are told by a re-init; an HLS player gets a new ``EXT-X-MAP``; but
some demuxers (ffmpeg's HLS demuxer feeds the new init into an MP4 demuxer that skips a
second ``moov``) keep decoding with the old parameter sets and show broken pictures. So
the LL-HLS output puts the current SPS and PPS (from the init's ``avcC``) in front of the
first sample of every keyframe fragment, as NAL units of the stream's own length size. An
H.264 decoder reconfigures when it meets new parameter sets in band; repeating unchanged
ones costs a few dozen bytes per keyframe.

:func:`with_parameter_sets` does the byte surgery: the inserted bytes go at the start of
the video track's first sample, so that sample's size in the ``trun`` grows, the ``mdat``
grows, and every ``trun`` data offset pointing past the insertion moves. Fragments it
cannot patch safely (sizes not explicit in the ``trun``, a base-data-offset, no video,
not H.264) are returned unchanged.
"""

from __future__ import annotations

import dataclasses
import struct
from functools import lru_cache

from server.media.boxes import Box, Reader, child_map, children, read_header
from server.media.types import InitSegment, MediaFragment, Track

_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_VISUAL_ENTRY = 78  # bytes of a VisualSampleEntry before its child boxes


@lru_cache(maxsize=64)
def parameter_sets(config: bytes) -> tuple[bytes, int] | None:
    """The SPS and PPS of an ``avc1``/``avc3`` sample entry as length-prefixed NAL units,
    and the length size; None for anything else."""
    entry = read_header(config, 0, len(config))
    if entry is None or entry.type not in ("avc1", "avc3") or entry.end > len(config):
        return None
    avcc = next(
        (
            b
            for b in children(config, entry.body + _VISUAL_ENTRY, entry.end, parent=entry.type)
            if b.type == "avcC"
        ),
        None,
    )
    if avcc is None:
        return None
    r = Reader(config, avcc)
    r.skip(4)  # version, profile, compatibility, level
    length_size = (r.u8() & 0x3) + 1
    units = [r.raw(r.u16()) for _ in range(r.u8() & 0x1F)]
    units += [r.raw(r.u16()) for _ in range(r.u8())]
    if not units:
        return None
    return b"".join(len(u).to_bytes(length_size, "big") + u for u in units), length_size


def with_parameter_sets(fragment: MediaFragment, init: InitSegment) -> MediaFragment:
    """``fragment`` with the init's SPS/PPS before its first video sample (keyframes only)."""
    video = init.video
    if not fragment.keyframe or video is None:
        return fragment
    found = parameter_sets(video.config)
    traf = fragment.track(video.id)
    if found is None or traf is None:
        return fragment
    inserted = found[0]
    data = fragment.data
    moof = read_header(data, fragment.moof_offset, len(data))
    if moof is None or moof.type != "moof":
        return fragment
    plan = _plan(data, moof, video)
    if plan is None:
        return fragment
    size_field, at, offsets = plan
    grow = len(inserted)
    mdat = read_header(data, moof.end, len(data))
    if mdat is None or mdat.type != "mdat" or mdat.header_size != 8 or not mdat.body <= at <= mdat.end:
        return fragment
    patched = bytearray(data[:at])
    _U32.pack_into(patched, size_field, _U32.unpack_from(data, size_field)[0] + grow)
    _U32.pack_into(patched, mdat.offset, mdat.size + grow)
    for field, value in offsets:
        if value > at - moof.offset:  # data after the insertion point moves with it
            _I32.pack_into(patched, field, value + grow)
    return dataclasses.replace(fragment, data=bytes(patched) + inserted + data[at:])


def _plan(data: bytes, moof: Box, video: Track) -> tuple[int, int, list[tuple[int, int]]] | None:
    """Where the video's first sample size is, where its data starts, and every trun
    data-offset field with its value; None if the layout is not one we patch."""
    size_field = at = None
    offsets: list[tuple[int, int]] = []
    for traf in child_map(data, moof).get("traf", []):
        found = child_map(data, traf)
        r = Reader(data, found["tfhd"][0])
        _, flags = r.full_header()
        track_id = r.u32()
        if flags & 0x1 or not flags & 0x20000:
            return None  # absolute or chained offsets: not patched
        for trun in found.get("trun", []):
            r = Reader(data, trun)
            _, trun_flags = r.full_header()
            samples = r.u32()
            if not trun_flags & 0x1:
                return None
            offsets.append((r.pos, r.i32()))
            if track_id != video.id or size_field is not None or not samples:
                continue
            if not trun_flags & 0x200:
                return None  # sizes from defaults: the first sample's size cannot grow alone
            if trun_flags & 0x4:
                r.skip(4)
            if trun_flags & 0x100:
                r.skip(4)
            size_field, at = r.pos, moof.offset + offsets[-1][1]
    if size_field is None or at is None:
        return None
    return size_field, at, offsets
