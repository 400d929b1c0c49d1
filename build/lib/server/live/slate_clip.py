"""A stage's slate clip: the stand-by picture (:func:`server.live.slate_card.render_card`)
as a short fragmented-MP4 loop encoded once with PyAV.

:func:`encode_slate` encodes the picture as H.264 (libx264, yuv420p, no B-frames, a constant
quantizer) plus silent audio (AAC, Opus or none) into one fMP4 byte string shaped like
ffmpeg's ``-movflags frag_keyframe+empty_moov+default_base_moof+skip_trailer``: ``ftyp`` +
``moov``, then ``moof`` + ``mdat`` fragments of at most 200 ms (LL-HLS parts), each GOP
starting one, with video and audio in the same fragment, every track starting at time 0
with no edit list.
The quantizer is constant rather than a quality target (CRF) so that every keyframe of the
same picture decodes to the same pixels: with CRF the second keyframe came out up to 50
levels off around the letters, and the text visibly "breathed" once a GOP. The frames
between keyframes cost a few bytes each; a 720p loop is 45-55 kB.

The clip is looped elsewhere by rewriting timestamps
(:func:`~server.media.timeline.loop_fragments`), which splices each pass onto the end of
the last. That is seamless only if every track of the clip ends at the same instant, so the
clip's length is a whole number of video frames *and* of audio frames
(:func:`plan_loop`): 25 fps with AAC (1024 samples) at 48 kHz line up every 320 ms, so
the loop is 1.92 s in two GOPs of 24 frames (0.96 s, 45 AAC frames each); with Opus (960
samples, 20 ms) they line up every frame, so the loop is 2 s in two 1 s GOPs. A format
whose frames never line up within :data:`MAX_LOOP_SECONDS` (25 fps with AAC at 44.1 kHz:
every 10.24 s) is refused with ``ValueError``.

Audio packets are stamped by the encoder's own count (packet *i* at ``i * frame_size``)
rather than shifted by the encoder's priming: the audio is silence, so which samples the
first packet carries does not matter, and both tracks then start at tfdt 0 and end
together.

Everything here is a pure function of its arguments (the cache holds loop plans), safe to
call from worker threads: PyAV must not run on the event loop. :class:`SlateCard` is
re-exported from :mod:`server.live.slate_card`, which draws the picture under its own lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Literal

import av
from av.audio.stream import AudioStream
from av.packet import Packet
from av.video.stream import VideoStream

from server.encoding.fmp4_writer import ByteSink, open_fmp4
from server.live.slate_card import SlateCard as SlateCard  # re-exported: the card the clip shows
from server.live.slate_card import render_card

AudioCodec = Literal["aac", "opus", "none"]

#: Longest fragment, milliseconds (the LL-HLS part target; publishers cut 200 ms too).
FRAGMENT_MS = 200
#: The loop's target length and the longest one accepted.
TARGET_LOOP_SECONDS = Fraction(2)
MAX_LOOP_SECONDS = Fraction(4)
#: Default size of the slate picture.
SLATE_SIZE = (1280, 720)
#: The GOP length aimed at (one GOP per fragment).
TARGET_GOP_SECONDS = 1.0

_ENCODERS = {"aac": "aac", "opus": "libopus"}
_AAC_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000})


@dataclass(frozen=True, slots=True)
class SlateFormat:
    """How the slate is encoded; best made like the stage's inputs so a switch needs no re-init.

    ``width`` x ``height`` (even), ``fps`` (1..120), ``audio`` ("aac", "opus" or "none"),
    ``sample_rate`` (Opus: 48 kHz) and ``channels`` (1 or 2). The loop's length and GOP follow
    from these (:func:`plan_loop`); a format whose video and audio frames never line up
    within :data:`MAX_LOOP_SECONDS` is refused here with ``ValueError``.
    """

    width: int = SLATE_SIZE[0]
    height: int = SLATE_SIZE[1]
    fps: int = 25
    audio: AudioCodec = "aac"
    sample_rate: int = 48_000
    channels: int = 2
    qp: int = 20  # libx264's constant quantizer: only the keyframes cost anything on a still picture

    def __post_init__(self) -> None:
        if not (16 <= self.width <= 7680 and 16 <= self.height <= 4320):
            raise ValueError(f"slate size must be 16x16..7680x4320, not {self.width}x{self.height}")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"slate size must be even for yuv420p, not {self.width}x{self.height}")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps must be 1..120, not {self.fps}")
        if self.audio not in ("aac", "opus", "none"):
            raise ValueError(f"audio must be aac, opus or none, not {self.audio!r}")
        if self.audio == "aac" and self.sample_rate not in _AAC_RATES:
            raise ValueError(f"AAC sample rate must be one of {sorted(_AAC_RATES)}, not {self.sample_rate}")
        if self.audio == "opus" and self.sample_rate != 48_000:
            raise ValueError(f"Opus in MP4 runs at 48000 Hz, not {self.sample_rate}")
        if self.channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, not {self.channels}")
        if not 0 <= self.qp <= 51:
            raise ValueError(f"qp must be 0..51, not {self.qp}")
        plan_loop(self)  # refuses formats that cannot loop seamlessly

    @property
    def audio_frame_size(self) -> int:
        """Samples per audio frame: AAC 1024, Opus 20 ms (960 at 48 kHz), 0 without audio."""
        return {"aac": 1024, "opus": self.sample_rate // 50, "none": 0}[self.audio]


@dataclass(frozen=True, slots=True)
class LoopPlan:
    """The clip's length and structure."""

    seconds: Fraction  # the loop's length: whole video frames and whole audio frames
    frames: int  # video frames in the loop
    gop: int  # video frames per GOP (fragments are cut at each keyframe and every 200 ms)
    audio_frame_size: int  # samples per audio frame (0 without audio)
    audio_frames: int  # audio frames in the loop

    @property
    def fragments(self) -> int:
        return self.frames // self.gop


def _lcm(a: Fraction, b: Fraction) -> Fraction:
    """The smallest positive rational that is a whole multiple of both."""
    return Fraction(math.lcm(a.numerator, b.numerator), math.gcd(a.denominator, b.denominator))


@lru_cache(maxsize=64)
def plan_loop(fmt: SlateFormat) -> LoopPlan:
    """The loop nearest :data:`TARGET_LOOP_SECONDS` that ends on a video frame and an audio
    frame boundary at once, cut into equal GOPs of about :data:`TARGET_GOP_SECONDS`.

    GOPs are whole divisors of the loop, so every pass starts with a keyframe; of two GOP
    lengths equally near the target, the one that also ends on audio frames wins.
    """
    frame = Fraction(1, fmt.fps)
    size = fmt.audio_frame_size
    audio_frame = Fraction(size, fmt.sample_rate) if size else None
    step = frame if audio_frame is None else _lcm(frame, audio_frame)
    if step > MAX_LOOP_SECONDS:
        raise ValueError(
            f"{fmt.fps} fps video and {size}-sample {fmt.audio} frames at {fmt.sample_rate} Hz "
            f"only line up every {float(step):.3f} s (over {float(MAX_LOOP_SECONDS):g} s): "
            "no seamless slate loop; use another frame rate or sample rate"
        )
    count = max(1, round(TARGET_LOOP_SECONDS / step))
    while count > 1 and count * step > MAX_LOOP_SECONDS:
        count -= 1
    seconds = count * step
    frames = int(seconds / frame)

    def score(gop: int) -> tuple[float, bool, int]:
        aligned = audio_frame is None or (gop * frame) % audio_frame == 0
        return (abs(math.log(gop / fmt.fps / TARGET_GOP_SECONDS)), not aligned, -gop)

    gop = min((d for d in range(1, frames + 1) if frames % d == 0), key=score)
    audio_frames = int(seconds / audio_frame) if audio_frame is not None else 0
    return LoopPlan(seconds, frames, gop, size, audio_frames)


# --- encoding --------------------------------------------------------------------------


def _layout(channels: int) -> str:
    return "mono" if channels == 1 else "stereo"


def encode_slate(card: SlateCard, fmt: SlateFormat = SlateFormat()) -> bytes:
    """The slate loop as one fMP4 byte string (``ftyp`` + ``moov``, then fragments of ≤ 200 ms).

    Parse it with :func:`server.media.fmp4.split_clip` and loop it with
    :func:`server.media.timeline.loop_fragments`. Takes about 70 ms for 1280x720 (150 ms
    for 1920x1080) on two cores; call it in a worker thread.
    """
    plan = plan_loop(fmt)
    picture = render_card(card, fmt.width, fmt.height)
    sink = ByteSink()
    # Fragments at every keyframe and every 200 ms: each one is an LL-HLS part.
    with open_fmp4(sink, fragment_ms=FRAGMENT_MS) as output:
        video = output.add_stream(
            "libx264",
            rate=fmt.fps,
            options={
                "preset": "veryfast",
                "tune": "stillimage",
                "qp": str(fmt.qp),  # constant: every keyframe decodes to the same picture
                "bf": "0",
                "g": str(plan.gop),
                "keyint_min": str(plan.gop),
                "sc_threshold": "0",  # keyframes exactly every GOP, nowhere else
            },
        )
        assert isinstance(video, VideoStream)
        video.width, video.height = fmt.width, fmt.height
        video.pix_fmt = "yuv420p"
        video.time_base = Fraction(1, fmt.fps)
        audio: AudioStream | None = None
        if fmt.audio != "none":
            stream = output.add_stream(_ENCODERS[fmt.audio], rate=fmt.sample_rate)
            assert isinstance(stream, AudioStream)
            stream.layout = _layout(fmt.channels)
            stream.time_base = Fraction(1, fmt.sample_rate)
            audio = stream

        image = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        image.time_base = Fraction(1, fmt.fps)
        silence: av.AudioFrame | None = None
        if audio is not None:
            formats = audio.codec_context.codec.audio_formats
            sample_format = formats[0].name if formats else "fltp"
            silence = av.AudioFrame(
                format=sample_format, layout=_layout(fmt.channels), samples=plan.audio_frame_size
            )
            for plane in silence.planes:
                plane.update(bytes(plane.buffer_size))
            silence.sample_rate = fmt.sample_rate
            silence.time_base = Fraction(1, fmt.sample_rate)

        fed = muxed = 0  # audio frames given to the encoder / audio packets muxed

        def mux_audio(packets: list[Packet[AudioStream]]) -> None:
            nonlocal muxed
            assert audio is not None
            for packet in packets:
                if muxed == plan.audio_frames:
                    return  # the encoder's flush: one frame more than was fed (its priming)
                packet.pts = packet.dts = muxed * plan.audio_frame_size
                packet.duration = plan.audio_frame_size
                packet.time_base = Fraction(1, fmt.sample_rate)
                output.mux(packet)
                muxed += 1

        for index in range(plan.frames):
            image.pts = index
            for packet in video.encode(image):
                packet.duration = packet.duration or 1
                output.mux(packet)
            if audio is not None and silence is not None:
                due = (index + 1) * plan.audio_frames // plan.frames
                while fed < due:
                    silence.pts = fed * plan.audio_frame_size
                    mux_audio(audio.encode(silence))
                    fed += 1
                    if audio.codec_context.frame_size not in (0, plan.audio_frame_size):
                        raise RuntimeError(
                            f"{audio.codec_context.name} uses {audio.codec_context.frame_size}-sample "
                            f"frames, not {plan.audio_frame_size}"
                        )
        for packet in video.encode(None):
            packet.duration = packet.duration or 1
            output.mux(packet)
        if audio is not None:
            mux_audio(audio.encode(None))
            if muxed != plan.audio_frames:
                raise RuntimeError(f"the audio encoder gave {muxed} packets, not {plan.audio_frames}")
    return sink.take()
