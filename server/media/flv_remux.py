"""FLV audio and video messages (from RTMP or a file) remuxed into our fMP4 values, no decode.

A :class:`Remuxer` is fed ``(kind, timestamp_ms, payload)`` and hands out the same
:class:`~server.media.types.InitSegment` and :class:`~server.media.types.MediaFragment`
values the fMP4 parser produces for WebSocket inputs, so the program, the GOP cache and
LL-HLS treat an RTMP input like any other.

- Init segments: video track 1 (``avc1``+``avcC``, ``hvc1``+``hvcC``, ``av01``+``av1C``
  from the sequence start's configuration record as is), audio track 2 (``mp4a``+``esds``
  from the AudioSpecificConfig, ``Opus``+``dOps`` from the OpusHead). The init is written
  when the first frame arrives, with every configuration seen by then (encoders send both
  sequence headers first). A sequence start with a different record later (an encoder
  restarted with new settings) ends the fragment in progress and makes a new init before
  the next frame; the same record again changes nothing.
- Clocks: video in 90 kHz ticks, exactly 90 per FLV millisecond (no rounding, so no
  drift), composition offsets kept (signed, ``trun`` version 1). Audio at its sample
  rate, each frame's time counted from the last anchor by frame durations (1024 for AAC,
  from the TOC for Opus), not rounded from milliseconds; the clock is re-anchored on the
  FLV time when that runs ahead by more than a frame (a gap the encoder left).
- Fragments: cut before every video keyframe and before the first frame at least
  ``fragment_ms`` after the fragment's start; audio goes in the fragment whose video time
  span holds it. Without video, audio is cut every ``fragment_ms``.
- A frame before its track's sequence start is ``media.frame_before_config``: the decoder
  could not use it, and encoders never send one, so it means a broken publisher. Video
  timestamps that go back are clamped (counted in :attr:`Remuxer.warnings`). The 32-bit
  millisecond clock's wrap (after 49.7 days) is not handled.
"""

from __future__ import annotations

import enum
import struct
from collections import Counter
from dataclasses import dataclass, field

from server.errors import MediaError
from server.media.flv import AudioMessage, PacketType, TagKind, VideoMessage, parse_audio, parse_video
from server.media.fmp4_build import (
    Run,
    Sample,
    TrackSpec,
    audio_entry,
    box,
    build_fragment,
    build_init,
    esds,
    visual_entry,
)
from server.media.picture_size import picture_size
from server.media.types import InitSegment, MediaFragment, TrackKind

VIDEO_TIMESCALE = 90_000
_TICKS_PER_MS = VIDEO_TIMESCALE // 1000
VIDEO_TRACK, AUDIO_TRACK = 1, 2
#: Default for ``max_pending``: bytes of samples held for the fragment in progress.
DEFAULT_MAX_PENDING = 16 * 2**20
_CONFIG_BOX = {"avc1": "avcC", "hvc1": "hvcC", "av01": "av1C"}
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_AAC_FRAME = 1024
#: Audio is held for the video of its time span; beyond this many fragment_ms without a
#: video frame, it goes out alone.
_VIDEO_STALL = 5
_OBU_TEMPORAL_DELIMITER = 2

Item = InitSegment | MediaFragment


class State(enum.Enum):
    RUNNING = "running"
    FAILED = "failed"  # an error was raised; every later feed raises it again


@dataclass(frozen=True, slots=True)
class _Config:
    codec: str
    record: bytes
    spec: TrackSpec
    length_size: int = 0  # NAL unit length prefix (avc1, hvc1)


@dataclass(slots=True)
class _Video:
    dts: int  # ticks
    offset: int  # ticks
    sync: bool
    data: bytes


@dataclass(slots=True)
class _Pending:
    video: list[_Video] = field(default_factory=list)
    audio: list[tuple[int, int, bytes]] = field(default_factory=list)  # time, duration, data
    size: int = 0


class Remuxer:
    """FLV messages in, init segments and fragments out (sans-I/O)."""

    def __init__(self, *, fragment_ms: int = 200, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if fragment_ms < 1:
            raise ValueError("fragment_ms must be positive")
        self.fragment_ms = fragment_ms
        self.max_pending = max_pending
        self.warnings: Counter[str] = Counter()
        #: Video frames seen with a composition offset (B-frames reorder), and the largest
        #: offset in milliseconds: what reordering adds to the latency.
        self.reordered_frames = 0
        self.max_composition_ms = 0
        self._state = State.RUNNING
        self._error: MediaError | None = None
        self._video_config: _Config | None = None
        self._audio_config: _Config | None = None
        self._init: InitSegment | None = None
        self._init_configs: tuple[_Config | None, _Config | None] = (None, None)
        self._pending = _Pending()
        self._sequence = 0
        self._last_dts: int | None = None  # ticks of the last video frame
        self._last_duration = 40 * _TICKS_PER_MS  # a guess until two frames were seen
        self._audio_next: int | None = None  # where the next audio frame starts, in samples

    @property
    def state(self) -> State:
        return self._state

    @property
    def init(self) -> InitSegment | None:
        return self._init

    def feed(self, kind: TagKind, timestamp: int, payload: bytes) -> list[Item]:
        """One FLV message: ``timestamp`` in milliseconds (the decode time for video)."""
        if self._error is not None:
            raise MediaError(self._error.code, f"the stream already failed: {self._error.message}")
        items: list[Item] = []
        try:
            if kind is TagKind.VIDEO:
                self._on_video(parse_video(payload), timestamp, items)
            elif kind is TagKind.AUDIO:
                self._on_audio(parse_audio(payload), timestamp, items)
        except MediaError as exc:
            self._state, self._error = State.FAILED, exc
            raise
        return items

    def end(self, *, align: bool = False) -> list[Item]:
        """The publisher stopped: the fragment in progress, if any.

        ``align``: leave out audio that runs past the last video frame, so both tracks end
        together (a live input, where whatever follows, a failover or a reconnect, continues
        both tracks from one point; otherwise its video would start after a gap)."""
        if self._error is not None:
            return []
        items: list[Item] = []
        pending = self._pending
        cut = pending.video[-1].dts + self._last_duration if align and pending.video else None
        self._flush(cut, items)
        self._pending = _Pending()
        return items

    # -- video

    def _on_video(self, message: VideoMessage, timestamp: int, items: list[Item]) -> None:
        if message.packet is PacketType.SEQUENCE_START:
            self._configure_video(message)
        elif message.packet is PacketType.CODED_FRAMES:
            config = _configured(self._video_config, message.codec, timestamp)
            if not message.data:
                return  # some encoders send empty frames as keep-alives
            if config.length_size:
                data = _check_nal_units(message.data, config.length_size)
            else:
                data = _without_temporal_delimiters(message.data)
            dts = timestamp * _TICKS_PER_MS
            if self._last_dts is not None and dts < self._last_dts:
                self.warnings["video_time_back"] += 1
                dts = self._last_dts
            if message.composition_offset:
                self.reordered_frames += 1
                self.max_composition_ms = max(self.max_composition_ms, message.composition_offset)
            pending = self._pending
            changed = (self._video_config, self._audio_config) != self._init_configs
            if pending.video and (
                message.keyframe
                or changed
                or dts - pending.video[0].dts >= self.fragment_ms * _TICKS_PER_MS
                or pending.size + len(data) > self.max_pending
            ):
                self._flush(dts, items)
            self._ensure_init(items)
            if self._last_dts is not None and dts > self._last_dts:
                self._last_duration = dts - self._last_dts
            self._last_dts = dts
            pending = self._pending
            pending.video.append(
                _Video(dts, message.composition_offset * _TICKS_PER_MS, message.keyframe, data)
            )
            pending.size += len(data)

    def _configure_video(self, message: VideoMessage) -> None:
        current = self._video_config
        if current is not None and current.codec == message.codec and current.record == message.data:
            return
        length_size = 0
        if message.codec in ("avc1", "hvc1"):
            at = 4 if message.codec == "avc1" else 21  # lengthSizeMinusOne's byte
            if len(message.data) <= at or message.data[0] != 1:
                raise MediaError(
                    "media.bad_flv", f"the {message.codec} configuration record is too short or not version 1"
                )
            length_size = (message.data[at] & 0x3) + 1
        if message.codec == "av01" and (len(message.data) < 4 or message.data[0] != 0x81):
            raise MediaError("media.bad_flv", "the av01 configuration record lacks its marker and version")
        width, height = picture_size(message.codec, message.data)
        entry = visual_entry(message.codec, width, height, box(_CONFIG_BOX[message.codec], message.data))
        spec = TrackSpec(VIDEO_TRACK, TrackKind.VIDEO, VIDEO_TIMESCALE, entry, width, height)
        self._video_config = _Config(message.codec, message.data, _checked(spec), length_size)

    # -- audio

    def _on_audio(self, message: AudioMessage, timestamp: int, items: list[Item]) -> None:
        if message.packet is PacketType.SEQUENCE_START:
            self._configure_audio(message)
            return
        if message.packet is not PacketType.CODED_FRAMES or not message.data:
            return
        config = _configured(self._audio_config, message.codec, timestamp)
        self._ensure_init(items)
        rate = config.spec.timescale
        duration = _opus_samples(message.data) if config.codec == "Opus" else _AAC_FRAME
        flv_time = timestamp * rate // 1000
        time = self._audio_next
        if time is None or flv_time > time + max(duration, _AAC_FRAME):
            if time is not None:
                self.warnings["audio_gap"] += 1
            time = flv_time
        self._audio_next = time + duration
        pending = self._pending
        pending.audio.append((time, duration, message.data))
        pending.size += len(message.data)
        span = time + duration - pending.audio[0][0]
        if self._init_configs[0] is None:
            if span >= self.fragment_ms * rate // 1000 or pending.size > self.max_pending:
                self._flush(None, items)
        elif span >= _VIDEO_STALL * self.fragment_ms * rate // 1000 or pending.size > self.max_pending:
            # The video stopped (a paused source): audio alone for now, rather than holding
            # it without bound; the next video frame's tfdt says where the video resumes.
            self.warnings["video_stalled"] += 1
            self._flush(None, items)

    def _configure_audio(self, message: AudioMessage) -> None:
        current = self._audio_config
        if current is not None and current.codec == message.codec and current.record == message.data:
            return
        if message.codec == "Opus":
            rate, channels, entry = 48000, *_opus_entry(message.data)
        else:
            rate, channels = _audio_specific_config(message.data)
            entry = audio_entry("mp4a", rate, channels, esds(message.data))
        spec = TrackSpec(AUDIO_TRACK, TrackKind.AUDIO, rate, entry)
        self._audio_config = _Config(message.codec, message.data, _checked(spec))

    # -- output

    def _ensure_init(self, items: list[Item]) -> None:
        """Write an init segment if the configurations changed since the last one."""
        configs = (self._video_config, self._audio_config)
        if self._init is not None and configs == self._init_configs:
            return
        self._flush(None, items)
        if configs[1] != self._init_configs[1]:
            self._audio_next = None  # another sample rate, maybe: start the count afresh
        self._init_configs = configs
        self._init = build_init([c.spec for c in configs if c is not None])
        items.append(self._init)

    def _flush(self, cut: int | None, items: list[Item]) -> None:
        """Emit the fragment in progress: video up to ``cut`` (ticks; None: everything,
        the last frame lasting as long as the one before) and the audio before it."""
        pending = self._pending
        if not pending.video and not pending.audio:
            return
        runs: list[Run] = []
        video_config, audio_config = self._init_configs
        if pending.video:
            frames = pending.video
            ends = [f.dts for f in frames[1:]] + [
                cut if cut is not None else frames[-1].dts + self._last_duration
            ]
            samples = [
                Sample(f.data, end - f.dts, f.sync, f.offset) for f, end in zip(frames, ends, strict=True)
            ]
            runs.append(Run(VIDEO_TRACK, TrackKind.VIDEO, frames[0].dts, samples))
        keep: list[tuple[int, int, bytes]] = []
        if pending.audio and audio_config is not None:
            rate = audio_config.spec.timescale
            limit = None if cut is None else cut * rate // VIDEO_TIMESCALE
            taken = [a for a in pending.audio if limit is None or a[0] < limit]
            keep = pending.audio[len(taken) :]
            if taken:
                ends = [a[0] for a in taken[1:]] + [taken[-1][0] + taken[-1][1]]
                audio = [Sample(data, end - time) for (time, _, data), end in zip(taken, ends, strict=True)]
                runs.append(Run(AUDIO_TRACK, TrackKind.AUDIO, taken[0][0], audio))
        self._pending = _Pending(audio=keep, size=sum(len(a[2]) for a in keep))
        if runs:
            self._sequence += 1
            items.append(build_fragment(self._sequence, runs, has_video=video_config is not None))


def _configured(config: _Config | None, codec: str, timestamp: int) -> _Config:
    """The track's configuration for a coded frame of ``codec``; our error if the frame comes
    before any sequence start, or is of another codec than the one it started."""
    if config is None:
        raise MediaError(
            "media.frame_before_config", f"a {codec} frame at {timestamp} ms before its sequence start"
        )
    if codec != config.codec:
        raise MediaError("media.bad_flv", f"a {codec} frame in a {config.codec} stream")
    return config


def _checked(spec: TrackSpec) -> TrackSpec:
    """``spec`` if an init segment of it reads back (the record is one a player can parse);
    refused at the sequence start, not later when the init is written."""
    try:
        build_init([spec])
    except MediaError as exc:
        raise MediaError("media.bad_flv", f"the configuration record is unreadable: {exc.message}") from exc
    return spec


def _check_nal_units(data: bytes, length_size: int) -> bytes:
    """``data`` if it is whole length-prefixed NAL units, else ``media.bad_flv``."""
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < length_size:
            raise MediaError("media.bad_flv", f"a NAL unit length is cut at byte {pos} of a {end}-byte frame")
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size + size
    if pos != end:
        raise MediaError("media.truncated_flv", f"a NAL unit runs {pos - end} byte(s) past its frame")
    return data


def _without_temporal_delimiters(data: bytes) -> bytes:
    """An AV1 temporal unit without its leading temporal delimiter OBUs, which ISO BMFF
    samples must not carry (AV1-ISOBMFF §2.4); ffmpeg and OBS send them in FLV."""
    while len(data) >= 2 and data[0] >> 3 & 0xF == _OBU_TEMPORAL_DELIMITER and data[0] & 0x02:
        at = 2 if data[0] & 0x04 else 1  # an extension byte
        if at >= len(data) or data[at] != 0:  # a delimiter is empty: its size is one 0 byte
            break
        data = data[at + 1 :]
    return data


def _audio_specific_config(config: bytes) -> tuple[int, int]:
    """Sample rate and channel count from an AudioSpecificConfig (ISO 14496-3 §1.6.2.1)."""
    if len(config) < 2:
        raise MediaError("media.bad_flv", "the AudioSpecificConfig is shorter than 2 bytes")
    bits = int.from_bytes(config[:8].ljust(8, b"\0"), "big")
    pos = 64

    def take(count: int) -> int:
        nonlocal pos
        pos -= count
        return bits >> pos & ((1 << count) - 1)

    if take(5) == 31:
        take(6)
    index = take(4)
    rate = take(24) if index == 15 else _AAC_RATES[index] if index < len(_AAC_RATES) else 0
    channels = take(4)
    if rate == 0:
        raise MediaError("media.bad_flv", f"the AudioSpecificConfig has sampling frequency index {index}")
    return rate, channels


def _opus_entry(head: bytes) -> tuple[int, bytes]:
    """Channel count and the ``Opus`` + ``dOps`` sample entry from an OpusHead (RFC 7845 §5.1)."""
    if len(head) < 19 or head[:8] != b"OpusHead":
        raise MediaError("media.bad_flv", "the Opus sequence start is not an OpusHead")
    _, channels, pre_skip, input_rate, gain, family = struct.unpack_from("<BBHIhB", head, 8)
    table = head[19 : 21 + channels] if family else b""
    if family and len(table) != 2 + channels:
        raise MediaError("media.bad_flv", "the OpusHead's channel mapping table is cut short")
    dops = box("dOps", struct.pack(">BBHIhB", 0, channels, pre_skip, input_rate, gain, family), table)
    return channels, audio_entry("Opus", 48000, channels, dops)


def _opus_samples(packet: bytes) -> int:
    """The duration of an Opus packet at 48 kHz, from its TOC byte (RFC 6716 §3.1)."""
    config, code = packet[0] >> 3, packet[0] & 0x3
    if config < 12:
        frame = (480, 960, 1920, 2880)[config & 0x3]
    elif config < 16:
        frame = (480, 960)[config & 0x1]
    else:
        frame = (120, 240, 480, 960)[config & 0x3]
    if code == 0:
        return frame
    if code in (1, 2):
        return 2 * frame
    if len(packet) < 2:
        raise MediaError("media.truncated_flv", "an Opus packet of code 3 lacks its frame count")
    return frame * max(1, packet[1] & 0x3F)
