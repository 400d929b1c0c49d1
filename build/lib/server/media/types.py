"""What the fMP4 parser hands out: init segments with their tracks, and media fragments.

Values only. ``data`` is always the exact bytes to send to a player (an init segment is
``ftyp`` + ``moov``; a fragment is ``[styp] [prft] [emsg]`` + ``moof`` + ``mdat``…), and the
offsets recorded here let :mod:`server.media.rewrite` patch timestamps without re-parsing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TrackKind(enum.Enum):
    VIDEO = "video"
    AUDIO = "audio"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Track:
    id: int
    kind: TrackKind
    timescale: int
    codec: str  # RFC 6381 string for MSE: "avc1.64001f", "mp4a.40.2", "opus", ...
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0
    default_sample_duration: int = 0  # from mvex/trex
    default_sample_size: int = 0  # from mvex/trex
    default_sample_flags: int = 0  # from mvex/trex
    #: The sample entry (``avc1`` with its ``avcC``, ``mp4a`` with its ``esds``, ``Opus`` …):
    #: the decoder configuration. Two inits whose entries differ need a re-init between them,
    #: even when the codec strings agree (another encoder's SPS/PPS, say).
    config: bytes = b""


@dataclass(frozen=True, slots=True)
class InitSegment:
    data: bytes
    tracks: tuple[Track, ...]

    @property
    def mime(self) -> str:
        """The MSE type: ``video/mp4; codecs="avc1.64001f,mp4a.40.2"`` (``audio/mp4`` without video)."""
        container = "video/mp4" if self.video is not None else "audio/mp4"
        codecs = ",".join(t.codec for t in self.tracks if t.kind is not TrackKind.OTHER)
        return f'{container}; codecs="{codecs}"'

    @property
    def video(self) -> Track | None:
        return next((t for t in self.tracks if t.kind is TrackKind.VIDEO), None)

    def track(self, track_id: int) -> Track | None:
        return next((t for t in self.tracks if t.id == track_id), None)

    def signature(self) -> tuple[tuple[object, ...], ...]:
        """What a decoder must know: equal signatures need no re-init between sources."""
        return tuple(
            (t.id, t.kind, t.timescale, t.codec, t.width, t.height, t.sample_rate, t.channels, t.config)
            for t in self.tracks
        )


@dataclass(frozen=True, slots=True)
class TrackFragment:
    """One ``traf`` of a fragment: where its samples start on the track's timeline."""

    track_id: int
    base_decode_time: int  # tfdt, in the track's timescale
    sample_count: int
    duration: int  # sum of its sample durations, in the track's timescale
    keyframe: bool  # its first sample is a sync sample
    tfdt_offset: int  # offset of the tfdt box within MediaFragment.data
    tfdt_version: int  # 0: 32-bit time, 1: 64-bit time


@dataclass(frozen=True, slots=True)
class MediaFragment:
    data: bytes
    sequence_number: int
    tracks: tuple[TrackFragment, ...]
    keyframe: bool  # a decoder can start here (the video track starts with a sync sample)
    moof_offset: int  # offset of the moof box within data
    mfhd_offset: int  # offset of the mfhd box within data
    producer_time: float | None = None  # from a prft box (NTP seconds since 1970), if any

    def track(self, track_id: int) -> TrackFragment | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)

    def __len__(self) -> int:
        return len(self.data)
