"""PES packets of an MPEG-TS program turned into the FLV messages our remuxer takes, no decode.

:class:`TsToFlv` is fed the :class:`~server.media.mpegts.PesPacket` values of a
:class:`~server.media.mpegts.TsDemuxer` and hands back :class:`~server.media.flv.FlvTag`
values for :meth:`server.media.flv_remux.Remuxer.feed`, so an SRT input reaches fMP4 by
the same code as an RTMP one::

    demuxer, converter, remuxer = TsDemuxer(), TsToFlv(), Remuxer()
    for pes in demuxer.feed(data):
        for tag in converter.feed(pes):
            items += remuxer.feed(tag.kind, tag.timestamp, tag.payload)

- H.264 (legacy FLV ``0x17``/``0x27``) and HEVC (Enhanced RTMP ``hvc1``): the Annex B
  access unit is split into NAL units; access unit delimiters are dropped and parameter
  sets are taken out of the sample into a configuration record (:mod:`server.media.nal_units`),
  sent as a sequence start before the first frame and again only when a parameter set
  changes. A keyframe holds an IDR (H.264) or IRAP (HEVC) picture. Frames before the first
  configuration and keyframe, or after a loss the demuxer reported, are dropped until the
  next keyframe (counted in :attr:`TsToFlv.warnings`): a decoder could not use them.
- AAC in ADTS: every ADTS frame of a PES is one raw frame message, the
  AudioSpecificConfig built from the ADTS header (sent again if it changes). A frame cut
  at the end of a PES is completed by the next one. The n-th frame of a PES is at its PTS
  plus n × 1024 samples.
- Time: a video message's timestamp is its DTS, with the composition offset PTS − DTS;
  audio uses its PTS. All are milliseconds after one zero shared by audio and video (so
  they stay in sync): the earliest first time of the program's streams. Each millisecond
  value is floored from the 90 kHz time since the zero, never accumulated, so there is no
  drift; the composition offset is the difference of the floored times, so the
  presentation time is floored the same way.
- Start-up: packets are held until every stream the PMT lists has shown a time (to find
  the zero), then messages until every stream has its configuration, which go out first:
  the remuxer's first init segment then holds both tracks. Both waits end after
  ``max_wait_ms`` of stream time or ``max_held`` bytes; a stream that starts later gets a
  new init segment from the remuxer.

Only the first video and the first audio PID seen are relayed (one track per kind), others
counted. Errors are :class:`~server.errors.MediaError`: ``media.bad_ts`` (an ADTS frame
that is not one), ``media.bad_config`` (a parameter set no record can hold),
``media.unsupported_codec`` (ADTS with several raw blocks or an in-band channel layout).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

from server.errors import MediaError
from server.media.flv import FlvTag, TagKind
from server.media.mpegts import AAC_ADTS, H264, HEVC, PesPacket
from server.media.nal_units import (
    AVC_AUD,
    AVC_IDR,
    AVC_PPS,
    AVC_SPS,
    HEVC_AUD,
    HEVC_IRAP,
    HEVC_PPS,
    HEVC_SPS,
    HEVC_VPS,
    Codec,
    avc_config,
    hevc_config,
    length_prefixed,
    nal_type,
    parameter_set_id,
    split_annex_b,
)

#: Default for ``max_wait_ms``: stream time held at start-up for a stream the PMT lists.
DEFAULT_MAX_WAIT_MS = 1000
#: Default for ``max_held``: bytes held at start-up, whatever the stream time.
DEFAULT_MAX_HELD = 16 * 2**20

_TICKS_PER_MS = 90
_AAC_FRAME = 1024
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_SI24 = range(-(1 << 23), 1 << 23)
_PARAMETER_SETS = {Codec.H264: (AVC_SPS, AVC_PPS), Codec.HEVC: (HEVC_VPS, HEVC_SPS, HEVC_PPS)}
_DELIMITER = {Codec.H264: AVC_AUD, Codec.HEVC: HEVC_AUD}
_VIDEO_CODECS = {H264: Codec.H264, HEVC: Codec.HEVC}


@dataclass(slots=True)
class _Video:
    codec: Codec
    parameter_sets: dict[tuple[int, int], bytes] = field(default_factory=dict)  # (type, id) -> unit
    record: bytes | None = None  # the configuration record last sent
    need_keyframe: bool = True


@dataclass(slots=True)
class _Audio:
    config: bytes | None = None  # the AudioSpecificConfig last sent
    anchor: int | None = None  # 90 kHz time of the frame `frames` frames before the next one
    frames: int = 0  # frames since the anchor
    rate: int = 0
    cut: bytes = b""  # the start of an ADTS frame cut off at the end of the last PES


@dataclass(slots=True)
class _Startup:
    packets: list[PesPacket] = field(default_factory=list)  # until the zero is known
    tags: list[FlvTag] = field(default_factory=list)  # until every configuration is known
    held: int = 0  # bytes
    first: dict[str, int] = field(default_factory=dict)  # "video" / "audio" -> first 90 kHz time


class TsToFlv:
    """PES packets in, ``(kind, timestamp_ms, payload)`` FLV messages out (sans-I/O)."""

    def __init__(self, *, max_wait_ms: int = DEFAULT_MAX_WAIT_MS, max_held: int = DEFAULT_MAX_HELD) -> None:
        if max_wait_ms < 0 or max_held < 0:
            raise ValueError("the limits must not be negative")
        self.max_wait_ms = max_wait_ms
        self.max_held = max_held
        self.warnings: Counter[str] = Counter()
        self._pids: dict[str, int] = {}  # "video" / "audio" -> the PID relayed
        self._video: _Video | None = None
        self._audio = _Audio()
        self._zero: int | None = None
        self._startup: _Startup | None = _Startup()

    def feed(self, packet: PesPacket) -> list[FlvTag]:
        """One PES packet; returns the messages ready for the remuxer, in order."""
        kind = "video" if packet.stream_type in _VIDEO_CODECS else "audio"
        if self._pids.setdefault(kind, packet.pid) != packet.pid:
            self.warnings["other_stream"] += 1
            return []
        startup = self._startup
        if startup is None:
            return self._convert(packet)
        time = packet.dts if kind == "video" else packet.pts
        if time is not None:
            startup.first.setdefault(kind, time)
        if self._zero is None:
            startup.packets.append(packet)
            startup.held += len(packet.data)
            if not self._waiting(packet, set(startup.first), time):
                self._zero = min(startup.first.values(), default=0)
                held, startup.packets = startup.packets, []
                for earlier in held:
                    startup.tags += self._convert(earlier)
        else:
            startup.held += len(packet.data)
            startup.tags += self._convert(packet)
        configured = {"video"} if self._video and self._video.record else set()
        configured |= {"audio"} if self._audio.config else set()
        if self._zero is None or self._waiting(packet, configured, time):
            return []
        return self._started()

    def end(self) -> list[FlvTag]:
        """The stream ended: whatever start-up still held (an ADTS frame cut short is lost)."""
        if self._audio.cut:
            self.warnings["audio_cut_short"] += 1
            self._audio.cut = b""
        startup = self._startup
        if startup is None:
            return []
        if self._zero is None:
            self._zero = min(startup.first.values(), default=0)
            for packet in startup.packets:
                startup.tags += self._convert(packet)
        return self._started()

    # -- start-up

    def _waiting(self, packet: PesPacket, have: set[str], time: int | None) -> bool:
        """Whether start-up still waits for a stream the program lists but ``have`` lacks."""
        startup = self._startup
        assert startup is not None
        listed = {"video" if kind in _VIDEO_CODECS else "audio" for kind in packet.program}
        if listed <= have or startup.held > self.max_held:
            return False
        if time is not None and startup.first:
            return time - min(startup.first.values()) < self.max_wait_ms * _TICKS_PER_MS
        return True

    def _started(self) -> list[FlvTag]:
        """Start-up is over: the held messages, sequence starts first."""
        startup, self._startup = self._startup, None
        assert startup is not None
        tags = startup.tags
        return sorted(tags, key=lambda tag: not _is_sequence_start(tag))  # stable: order kept

    def _ms(self, time: int) -> int:
        assert self._zero is not None
        since = time - self._zero
        if since < 0:
            self.warnings["before_zero"] += 1
            return 0
        return since // _TICKS_PER_MS

    def _convert(self, packet: PesPacket) -> list[FlvTag]:
        if packet.stream_type == AAC_ADTS:
            return self._on_audio(packet)
        return self._on_video(packet, _VIDEO_CODECS[packet.stream_type])

    # -- video

    def _on_video(self, packet: PesPacket, codec: Codec) -> list[FlvTag]:
        video = self._video
        if video is None or video.codec is not codec:
            video = self._video = _Video(codec)
        if packet.dts is None or packet.pts is None:
            self.warnings["video_without_time"] += 1
            return []
        if packet.discontinuity:
            video.need_keyframe = True
        tags: list[FlvTag] = []
        dts = self._ms(packet.dts)
        parameter_types, frame, keyframe, changed = _PARAMETER_SETS[codec], [], False, False
        for unit in split_annex_b(packet.data):
            kind = nal_type(codec, unit)
            if kind == _DELIMITER[codec]:
                continue
            if kind in parameter_types:
                key = (kind, parameter_set_id(codec, unit))
                changed |= video.parameter_sets.get(key) != unit
                video.parameter_sets[key] = unit
                continue
            keyframe |= kind == AVC_IDR if codec is Codec.H264 else kind in HEVC_IRAP
            frame.append(unit)
        if changed:
            units = [
                [unit for (kind, _), unit in sorted(video.parameter_sets.items()) if kind == t]
                for t in parameter_types
            ]
            record = avc_config(*units) if codec is Codec.H264 else hevc_config(*units)
            if record != video.record:
                video.record = record
                tags.append(FlvTag(TagKind.VIDEO, dts, _video_header(codec, None, 0) + record))
        if not frame:
            return tags
        if video.record is None or (video.need_keyframe and not keyframe):
            self.warnings["video_before_keyframe"] += 1
            return tags
        video.need_keyframe = False
        offset = self._ms(packet.pts) - dts
        if offset not in _SI24:
            raise MediaError("media.bad_ts", f"a video PTS is {offset} ms from its DTS")
        tags.append(
            FlvTag(TagKind.VIDEO, dts, _video_header(codec, keyframe, offset) + length_prefixed(frame))
        )
        return tags

    # -- audio

    def _on_audio(self, packet: PesPacket) -> list[FlvTag]:
        audio, data = self._audio, packet.data
        tags: list[FlvTag] = []
        if packet.discontinuity and audio.cut:
            self.warnings["audio_cut_short"] += 1
            audio.cut = b""
        if packet.pts is None and audio.anchor is None:
            self.warnings["audio_without_time"] += 1
            return tags
        pos = 0
        if audio.cut:  # the end of a frame that started in the last PES, on the last PES's clock
            data = audio.cut + data
        elif packet.discontinuity:
            pos = _find_sync(data)
            self.warnings["audio_skipped_bytes"] += pos
        boundary, anchored = len(audio.cut), False
        audio.cut = b""
        while pos < len(data):
            if pos >= boundary and not anchored and packet.pts is not None:
                audio.anchor, audio.frames, anchored = packet.pts, 0, True  # the first frame starting here
            if len(data) - pos < 7:
                audio.cut = data[pos:]
                break
            header, size, config, rate = _adts(data, pos)
            if len(data) - pos < size:
                audio.cut = data[pos:]
                break
            if config != audio.config:
                audio.config, audio.rate = config, rate
                tags.append(FlvTag(TagKind.AUDIO, self._audio_ms(), b"\xaf\x00" + config))
            if size > header:
                tags.append(
                    FlvTag(TagKind.AUDIO, self._audio_ms(), b"\xaf\x01" + data[pos + header : pos + size])
                )
            audio.frames += 1
            pos += size
        return tags

    def _audio_ms(self) -> int:
        """The time of the next frame: the anchor plus whole frames, floored once."""
        audio = self._audio
        assert audio.anchor is not None and self._zero is not None
        since = (audio.anchor - self._zero) * audio.rate + audio.frames * _AAC_FRAME * 90_000
        if since < 0:
            self.warnings["before_zero"] += 1
            return 0
        return since // (_TICKS_PER_MS * audio.rate)


def _video_header(codec: Codec, keyframe: bool | None, offset: int) -> bytes:
    """The FLV video tag header: a sequence start (``keyframe`` None) or a coded frame."""
    composition = offset.to_bytes(3, "big", signed=True)
    if codec is Codec.H264:
        if keyframe is None:
            return b"\x17\x00\x00\x00\x00"
        return bytes([0x17 if keyframe else 0x27, 1]) + composition
    if keyframe is None:  # Enhanced RTMP: IsExHeader | FrameType << 4 | PacketType, FourCC
        return b"\x90hvc1"
    return bytes([0x80 | (1 if keyframe else 2) << 4 | 1]) + b"hvc1" + composition


def _is_sequence_start(tag: FlvTag) -> bool:
    if tag.kind is TagKind.AUDIO:
        return tag.payload[1] == 0
    return tag.payload[:2] == b"\x17\x00" or tag.payload[:1] == b"\x90"


def _find_sync(data: bytes) -> int:
    """Where the first ADTS syncword is (the end of ``data`` if none)."""
    pos = data.find(b"\xff")
    while 0 <= pos < len(data) - 1 and data[pos + 1] & 0xF6 != 0xF0:
        pos = data.find(b"\xff", pos + 1)
    return len(data) if pos < 0 or pos >= len(data) - 1 else pos


def _adts(data: bytes, pos: int) -> tuple[int, int, bytes, int]:
    """Header size, frame size, AudioSpecificConfig and sample rate of the ADTS frame at ``pos`` (ISO
    14496-3 §1.A.2.2); its 7 fixed bytes are there."""
    h = data[pos : pos + 7]
    if h[0] != 0xFF or h[1] & 0xF6 != 0xF0:
        raise MediaError("media.bad_ts", f"an AAC PES has no ADTS syncword at byte {pos}")
    header = 7 if h[1] & 0x01 else 9  # protection_absent: no CRC
    profile, index, channels = h[2] >> 6, h[2] >> 2 & 0xF, (h[2] & 0x1) << 2 | h[3] >> 6
    size = (h[3] & 0x3) << 11 | h[4] << 3 | h[5] >> 5
    if size < header or index >= len(_AAC_RATES):
        raise MediaError("media.bad_ts", f"an ADTS header has frame size {size} and rate index {index}")
    if h[6] & 0x3 or channels == 0:
        raise MediaError(
            "media.unsupported_codec", "ADTS with several raw blocks per frame or an in-band channel layout"
        )
    object_type = profile + 1
    config = struct.pack(">H", object_type << 11 | index << 7 | channels << 3)
    return header, size, config, _AAC_RATES[index]
