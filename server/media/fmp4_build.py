"""Writing fragmented MP4 from elementary streams: init segments and fragments as bytes, and
the :mod:`server.media.types` values that describe them.

The remuxers (FLV today) hand over decoder configuration records and samples; this module
lays out ``ftyp`` + ``moov`` (one track each, ``mvex`` with ``trex``, no samples) and
``moof`` (``mfhd``, one ``traf`` per track: ``tfhd`` with default-base-is-moof, a 64-bit
``tfdt``, a version 1 ``trun`` with per-sample duration, size, flags and signed
composition offset) + ``mdat``. The track values come from :func:`parse_tracks` reading
the bytes just written, so an init built here is described exactly as the fMP4 parser
would describe it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from server.media.boxes import parse_tracks
from server.media.types import InitSegment, MediaFragment, TrackFragment, TrackKind

SYNC_FLAGS = 0x02000000  # sample_depends_on = 2 (depends on no other sample)
NON_SYNC_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def box(kind: str, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind.encode("latin-1")) + body


def full_box(kind: str, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags), *parts)


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """What an init segment says about one track."""

    id: int
    kind: TrackKind  # VIDEO or AUDIO
    timescale: int
    entry: bytes  # the whole sample entry box (avc1 + avcC, mp4a + esds, ...)
    width: int = 0
    height: int = 0


def visual_entry(kind: str, width: int, height: int, *configs: bytes) -> bytes:
    """A VisualSampleEntry (ISO 14496-12 §12.1.3) with its configuration boxes."""
    fields = (
        bytes(6)
        + struct.pack(">H", 1)  # data_reference_index
        + bytes(16)
        + struct.pack(">HHIIIH", width, height, 0x480000, 0x480000, 0, 1)
        + bytes(32)  # compressorname
        + struct.pack(">Hh", 0x18, -1)
    )
    return box(kind, fields, *configs)


def audio_entry(kind: str, sample_rate: int, channels: int, *configs: bytes) -> bytes:
    """An AudioSampleEntry version 0 (ISO 14496-12 §12.2.3) with its configuration boxes."""
    rate = sample_rate << 16 if sample_rate < 0x10000 else 0
    fields = bytes(6) + struct.pack(">H", 1) + bytes(8) + struct.pack(">HHHHI", channels, 16, 0, 0, rate)
    return box(kind, fields, *configs)


def esds(audio_specific_config: bytes) -> bytes:
    """An ``esds`` for MPEG-4 audio (ISO 14496-1 §7.2.6): ES > DecoderConfig > DecSpecificInfo, SL."""

    def descriptor(tag: int, body: bytes) -> bytes:
        return bytes([tag]) + _expandable(len(body)) + body

    info = descriptor(0x05, audio_specific_config)
    decoder = descriptor(0x04, bytes([0x40, 0x15]) + bytes(11) + info)  # MPEG-4 audio, AudioStream
    es = descriptor(0x03, struct.pack(">HB", 1, 0) + decoder + descriptor(0x06, b"\x02"))
    return full_box("esds", 0, 0, es)


def _expandable(size: int) -> bytes:
    return bytes([0x80 | size >> 21 & 0x7F, 0x80 | size >> 14 & 0x7F, 0x80 | size >> 7 & 0x7F, size & 0x7F])


def build_init(tracks: Sequence[TrackSpec]) -> InitSegment:
    ftyp = box("ftyp", b"iso6", struct.pack(">I", 0), b"iso6", b"isom", b"mp41")
    mvhd = full_box(
        "mvhd", 0, 0, bytes(8), struct.pack(">IIIH", 1000, 0, 0x10000, 0x100), bytes(10), _MATRIX, bytes(24),
        struct.pack(">I", max(t.id for t in tracks) + 1),
    )  # fmt: skip
    traks = [_trak(t) for t in tracks]
    trexs = [full_box("trex", 0, 0, struct.pack(">5I", t.id, 1, 0, 0, 0)) for t in tracks]
    moov = box("moov", mvhd, *traks, box("mvex", *trexs))
    return InitSegment(ftyp + moov, parse_tracks(moov, 8))


def _trak(track: TrackSpec) -> bytes:
    video = track.kind is TrackKind.VIDEO
    tkhd = full_box(
        "tkhd", 0, 0x3, bytes(8), struct.pack(">II", track.id, 0), bytes(4), bytes(8),
        struct.pack(">hhH", 0, 0, 0 if video else 0x100), bytes(2), _MATRIX,
        struct.pack(">II", track.width << 16, track.height << 16),
    )  # fmt: skip
    mdhd = full_box("mdhd", 0, 0, bytes(8), struct.pack(">II", track.timescale, 0), b"\x55\xc4\0\0")
    handler = b"vide" if video else b"soun"
    hdlr = full_box("hdlr", 0, 0, bytes(4), handler, bytes(12), b"forumcast\0")
    media_header = full_box("vmhd", 0, 1, bytes(8)) if video else full_box("smhd", 0, 0, bytes(4))
    dinf = box("dinf", full_box("dref", 0, 0, struct.pack(">I", 1), full_box("url ", 0, 1)))
    stbl = box(
        "stbl",
        full_box("stsd", 0, 0, struct.pack(">I", 1), track.entry),
        full_box("stts", 0, 0, bytes(4)),
        full_box("stsc", 0, 0, bytes(4)),
        full_box("stsz", 0, 0, bytes(8)),
        full_box("stco", 0, 0, bytes(4)),
    )
    return box("trak", tkhd, box("mdia", mdhd, hdlr, box("minf", media_header, dinf, stbl)))


@dataclass(frozen=True, slots=True)
class Sample:
    data: bytes
    duration: int  # in the track's timescale
    sync: bool = True
    composition_offset: int = 0  # presentation minus decode time, in the track's timescale


@dataclass(frozen=True, slots=True)
class Run:
    """One track's samples in a fragment, from ``base_decode_time`` on."""

    track_id: int
    kind: TrackKind
    base_decode_time: int
    samples: Sequence[Sample]


def build_fragment(sequence_number: int, runs: Sequence[Run], *, has_video: bool) -> MediaFragment:
    """One ``moof`` + ``mdat`` holding ``runs`` (empty runs are left out). ``has_video``: the
    init has a video track, so the fragment is a keyframe only if its video starts with one."""
    runs = [run for run in runs if run.samples]
    moof_size = 8 + 16 + sum(8 + 16 + 20 + 20 + 16 * len(run.samples) for run in runs)
    data_offset = moof_size + 8
    trafs: list[bytes] = []
    tracks: list[TrackFragment] = []
    payload: list[bytes] = []
    tfdt_at = 8 + 16  # moof header, mfhd
    for run in runs:
        rows = b"".join(
            struct.pack(
                ">IIIi",
                s.duration,
                len(s.data),
                SYNC_FLAGS if s.sync else NON_SYNC_FLAGS,
                s.composition_offset,
            )
            for s in run.samples
        )
        trun = full_box("trun", 1, 0xF01, struct.pack(">Ii", len(run.samples), data_offset), rows)
        tfhd = full_box("tfhd", 0, 0x20000, struct.pack(">I", run.track_id))
        tfdt = full_box("tfdt", 1, 0, struct.pack(">Q", run.base_decode_time))
        trafs.append(box("traf", tfhd, tfdt, trun))
        keyframe = run.kind is not TrackKind.VIDEO or run.samples[0].sync
        tracks.append(
            TrackFragment(
                track_id=run.track_id,
                base_decode_time=run.base_decode_time,
                sample_count=len(run.samples),
                duration=sum(s.duration for s in run.samples),
                keyframe=keyframe,
                tfdt_offset=tfdt_at + 8 + 16,
                tfdt_version=1,
            )
        )
        tfdt_at += len(trafs[-1])
        size = sum(len(s.data) for s in run.samples)
        data_offset += size
        payload.extend(s.data for s in run.samples)
    moof = box("moof", full_box("mfhd", 0, 0, struct.pack(">I", sequence_number)), *trafs)
    assert len(moof) == moof_size
    video = next((t for t, r in zip(tracks, runs, strict=True) if r.kind is TrackKind.VIDEO), None)
    return MediaFragment(
        data=moof + box("mdat", *payload),
        sequence_number=sequence_number,
        tracks=tuple(tracks),
        keyframe=video.keyframe if video is not None else not has_video,
        moof_offset=0,
        mfhd_offset=8,
    )
