"""A live test-pattern source: the picture of :mod:`server.encoding.picture` and a once-a-second beep,
encoded with PyAV (libx264 + AAC or Opus) and muxed to fragmented MP4 in memory.

:class:`PatternEncoder` owns the encoders and the muxer. It never sleeps and never reads
the clock for the picture: the caller says up to which wall-clock time frames are due
(:meth:`PatternEncoder.encode_until`) and gets back whatever fMP4 bytes the muxer wrote. A
live publisher calls it once per frame tick; tests call it with a time seconds ahead and
get seconds of stream at encoder speed.

What the muxer emits (``movflags=frag_keyframe+empty_moov+default_base_moof+skip_trailer``,
``frag_duration``, ``write_prft=wallclock``):

- first ``ftyp`` + ``moov`` (with ``mvex``, no samples), out with the first frame;
- then per fragment ``prft`` + ``moof`` + ``mdat``. The ``prft`` (version 1, reference track
  = video) carries the wall clock at which the fragment's first video frame entered libx264
  (``export_side_data=prft``; without it ffmpeg would stamp the moment the fragment was
  written, one fragment later), rounded to the millisecond;
- a fragment is complete, and written, only when the first packet of the next one has
  passed the muxer's audio/video interleaving, so its bytes come out one fragment duration
  plus two frames after its first frame was painted. :meth:`close` writes the last one.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Literal, Self

import av
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from server.encoding.fmp4_writer import ByteSink, open_fmp4
from server.encoding.picture import PatternPainter, beep

AudioCodec = Literal["aac", "opus", "none"]

SAMPLE_RATE = 48_000

_ENCODERS = {"aac": "aac", "opus": "libopus"}


@dataclass(frozen=True, slots=True)
class PatternSettings:
    label: str = "TEST"
    width: int = 640
    height: int = 360
    fps: int = 25
    gop: int = 50  # frames from one keyframe to the next
    fragment_ms: int = 200  # a fragment is cut at every keyframe and after this much media
    bitrate: int = 1_000_000  # video, bits per second
    audio: AudioCodec = "aac"
    audio_bitrate: int = 64_000
    preset: str = "veryfast"
    busy: bool = True  # a strip of random blocks so the stream really uses its bitrate

    def __post_init__(self) -> None:
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps must be 1..120, not {self.fps}")
        if self.gop < 1 or self.fragment_ms < 1 or self.bitrate < 10_000:
            raise ValueError("gop and fragment_ms must be positive and bitrate at least 10k")
        if self.audio not in ("aac", "opus", "none"):
            raise ValueError(f"audio must be aac, opus or none, not {self.audio!r}")


def parse_bitrate(text: str) -> int:
    """``"1000k"``, ``"2.5M"`` or ``"800000"`` in bits per second."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if match is None:
        raise ValueError(f"not a bitrate: {text!r} (like 1000k or 2.5M)")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return round(float(match.group(1)) * factor)


@lru_cache(maxsize=4)
def audio_priming(codec: str, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples the encoder puts before the first input sample (AAC: 1024, Opus: 312).

    PyAV does not expose ``initial_padding``, so a throwaway encoder is asked. Starting the
    audio pts at this value makes the first packet's pts 0: both tracks then start at
    tfdt 0 with no edit list, and an input sample with pts *p* is heard at *p* — the muxer
    would otherwise shift every stream by the priming and stretch the first video frame.
    """
    probe = av.CodecContext.create(codec, "w")
    if not isinstance(probe, AudioCodecContext):
        raise ValueError(f"{codec} is not an audio encoder")
    probe.sample_rate = sample_rate
    probe.layout = "mono"
    probe.format = probe.codec.audio_formats[0].name if probe.codec.audio_formats else "fltp"
    probe.time_base = Fraction(1, sample_rate)
    probe.open()
    frame = av.AudioFrame(format=probe.format.name, layout="mono", samples=probe.frame_size or 1024)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = sample_rate
    frame.pts = 0
    frame.time_base = Fraction(1, sample_rate)
    packets = [*probe.encode(frame), *probe.encode(None)]
    return max(0, -min((p.pts for p in packets if p.pts is not None), default=0))


class PatternEncoder:
    """Encodes the test pattern for frames at ``start + n / fps`` (wall-clock seconds)."""

    def __init__(self, settings: PatternSettings, *, start: float) -> None:
        self.settings = settings
        self.start = start
        self.frames = 0  # video frames encoded so far
        self._samples = 0  # audio samples encoded so far
        self._priming = 0  # the audio encoder's priming samples (see audio_priming)
        self._painter = PatternPainter(settings.label, settings.width, settings.height, busy=settings.busy)
        self._sink = ByteSink()
        self._closed = False
        self._output = open_fmp4(self._sink, fragment_ms=settings.fragment_ms, prft=True)
        self._video = self._add_video()
        self._audio = self._add_audio()

    def _add_video(self) -> VideoStream:
        s = self.settings
        stream = self._output.add_stream(
            "libx264",
            rate=s.fps,
            options={
                "preset": s.preset,
                "tune": "zerolatency",
                "bf": "0",
                "g": str(s.gop),
                "keyint_min": str(s.gop),
                "sc_threshold": "0",  # no scene-cut keyframes: the GOP is exactly --gop frames
                "maxrate": str(s.bitrate),
                "bufsize": str(s.bitrate),  # one second of VBV keeps fragments even-sized
                "export_side_data": "prft",
            },
        )
        stream.width = s.width
        stream.height = s.height
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = s.bitrate
        stream.time_base = Fraction(1, s.fps)
        return stream

    def _add_audio(self) -> AudioStream | None:
        s = self.settings
        if s.audio == "none":
            return None
        stream = self._output.add_stream(_ENCODERS[s.audio], rate=SAMPLE_RATE)
        assert isinstance(stream, AudioStream)
        stream.layout = "mono"
        stream.bit_rate = s.audio_bitrate
        stream.time_base = Fraction(1, SAMPLE_RATE)
        self._priming = audio_priming(_ENCODERS[s.audio])
        return stream

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frame_time(self, index: int) -> float:
        return self.start + index / self.settings.fps

    @property
    def next_frame_time(self) -> float:
        """Wall-clock time of the next frame to encode: when a live caller should call again."""
        return self.frame_time(self.frames)

    def encode_until(self, wall_time: float) -> bytes:
        """Encode every frame due at or before ``wall_time``; the fMP4 bytes the muxer wrote."""
        while not self._closed and self.next_frame_time <= wall_time:
            self._encode_frame()
        return self._sink.take()

    def encode_frames(self, count: int) -> bytes:
        for _ in range(count):
            self._encode_frame()
        return self._sink.take()

    def _encode_frame(self) -> None:
        index = self.frames
        image = self._painter.paint(self.frame_time(index))
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        frame.time_base = Fraction(1, self.settings.fps)
        for packet in self._video.encode(frame):
            self._output.mux(packet)
        self.frames += 1
        self._encode_audio_until((self.frames * SAMPLE_RATE) // self.settings.fps)

    def _encode_audio_until(self, samples: int) -> None:
        """Audio keeps pace with video in whole encoder frames; the remainder waits a tick."""
        stream = self._audio
        if stream is None:
            return
        size = stream.codec_context.frame_size or 1024
        fmt = stream.codec_context.format.name
        while self._samples + size <= samples:
            times = self.start + (self._samples + np.arange(size, dtype=np.float64)) / SAMPLE_RATE
            tone = beep(times)
            pcm = (tone * 32767).astype(np.int16) if fmt.startswith("s16") else tone
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format=fmt, layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self._priming + self._samples
            frame.time_base = Fraction(1, SAMPLE_RATE)
            for packet in stream.encode(frame):
                self._output.mux(packet)
            self._samples += size

    def close(self) -> bytes:
        """Flush the encoders and the muxer; the last bytes (the final fragment)."""
        if self._closed:
            return self._sink.take()
        self._closed = True
        for stream in (self._video, self._audio):
            if stream is not None:
                for packet in stream.encode(None):
                    self._output.mux(packet)
        self._output.close()
        return self._sink.take()


def encode_clip(
    label: str, seconds: float, settings: PatternSettings | None = None, *, start: float = 0.0
) -> bytes:
    """``seconds`` of test pattern as one fMP4 byte string, encoded as fast as possible.

    Fits :data:`server.live.demo.Encoder`: ``encode_clip("Main forum", 4.0)``.
    """
    chosen = dataclasses.replace(settings or PatternSettings(), label=label)
    frames = max(1, round(seconds * chosen.fps))
    encoder = PatternEncoder(chosen, start=start)
    try:
        return encoder.encode_frames(frames) + encoder.close()
    except BaseException:
        encoder.close()
        raise
