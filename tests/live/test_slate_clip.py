"""The slate clip (server/live/slate_clip.py): decoded with PyAV and ffmpeg, parsed with our
fMP4 parser, and looped with the timeline the program uses."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from functools import cache

import av
import numpy as np
import pytest
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from server.live.slate_card import SlateCard, render_card
from server.live.slate_clip import MAX_LOOP_SECONDS, LoopPlan, SlateFormat, encode_slate, plan_loop
from server.media.fmp4 import split_clip
from server.media.timeline import loop_fragments
from server.media.types import InitSegment, MediaFragment, TrackKind
from tests.media.media_files import decode_errors

CARD = SlateCard(
    title_zh="主论坛",
    title_en="Main Forum",
    next_line="Next · 下一场: Keynote by Lord Stern — 14:00 (Asia/Shanghai)",
    event_title="2020 Green Development City Summit",
)
SMALL = {
    "aac": SlateFormat(320, 180, audio="aac"),
    "opus": SlateFormat(320, 180, audio="opus"),
    "none": SlateFormat(320, 180, audio="none"),
    "aac_mono_30fps": SlateFormat(320, 180, fps=30, audio="aac", channels=1),
}
CODECS = {"aac": "mp4a.40.2", "opus": "opus"}


@cache
def clip(name: str) -> bytes:
    return encode_slate(CARD, SMALL[name])


@cache
def parsed(name: str) -> tuple[InitSegment, list[MediaFragment]]:
    return split_clip(clip(name))


@cache
def decoded(name: str) -> tuple[list[VideoFrame], list[AudioFrame], list[tuple[int, str, str]]]:
    """Every frame PyAV decodes from the clip, and what libav logged at error level or worse."""
    before = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs, av.open(io.BytesIO(clip(name)), "r", format="mp4") as container:
            video: list[VideoFrame] = []
            audio: list[AudioFrame] = []
            for frame in (f for packet in container.demux() for f in packet.decode()):
                if isinstance(frame, VideoFrame):
                    video.append(frame)
                elif isinstance(frame, AudioFrame):
                    audio.append(frame)
    finally:
        av.logging.set_level(before)
    return video, audio, list(logs)


def loop_seconds(plan: LoopPlan, fmt: SlateFormat) -> tuple[Fraction, Fraction]:
    """The loop's length counted in video frames and in audio frames."""
    audio = Fraction(plan.audio_frames * plan.audio_frame_size, fmt.sample_rate)
    return Fraction(plan.frames, fmt.fps), audio


# --- the loop plan ---------------------------------------------------------------------


def test_plan_for_25_fps_aac_is_1_92_s_in_two_gops() -> None:
    plan = plan_loop(SlateFormat())
    assert plan == LoopPlan(Fraction(48, 25), frames=48, gop=24, audio_frame_size=1024, audio_frames=90)
    assert plan.fragments == 2
    # A GOP ends on an audio frame too: 0.96 s is 45 AAC frames.
    assert Fraction(plan.gop, 25) * 48_000 % 1024 == 0


def test_plan_for_opus_and_no_audio_is_2_s_in_1_s_gops() -> None:
    assert plan_loop(SlateFormat(audio="opus")) == LoopPlan(Fraction(2), 50, 25, 960, 100)
    assert plan_loop(SlateFormat(audio="none")) == LoopPlan(Fraction(2), 50, 25, 0, 0)


@pytest.mark.parametrize("fps", [5, 10, 12, 15, 24, 25, 30, 48, 50, 60])
@pytest.mark.parametrize(
    ("audio", "rate"), [("aac", 48_000), ("aac", 32_000), ("aac", 16_000), ("opus", 48_000), ("none", 48_000)]
)
def test_every_plan_ends_on_video_and_audio_frames(fps: int, audio: str, rate: int) -> None:
    size = {"aac": 1024, "opus": 960, "none": 1}[audio]
    # By brute force: the video frame counts up to 4 s that are also whole audio frames.
    aligned = [n for n in range(1, 4 * fps + 1) if (n * rate) % (fps * size) == 0]
    if not aligned:
        with pytest.raises(ValueError, match="only line up every"):
            SlateFormat(fps=fps, audio=audio, sample_rate=rate)  # type: ignore[arg-type]
        return
    fmt = SlateFormat(fps=fps, audio=audio, sample_rate=rate)  # type: ignore[arg-type]
    plan = plan_loop(fmt)
    video, sound = loop_seconds(plan, fmt)
    assert video == plan.seconds <= MAX_LOOP_SECONDS
    assert plan.frames in aligned
    assert abs(plan.seconds - 2) <= Fraction(aligned[0], fps) / 2  # the nearest to 2 s
    if audio != "none":
        assert sound == plan.seconds
    assert plan.frames % plan.gop == 0  # every pass starts with a keyframe
    assert 0.5 <= plan.gop / fps <= 2.7  # about a second (24 fps with AAC: 1.33 s; 5 fps: 0.8 s)


def test_format_whose_frames_never_line_up_is_refused() -> None:
    # 1024 samples at 44.1 kHz and 25 fps line up only every 10.24 s.
    with pytest.raises(ValueError, match=r"10\.240 s"):
        SlateFormat(fps=25, audio="aac", sample_rate=44_100)
    assert plan_loop(SlateFormat(fps=25, audio="none", sample_rate=44_100)).seconds == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 321},
        {"height": 8},
        {"fps": 0},
        {"audio": "mp3"},
        {"audio": "opus", "sample_rate": 44_100},
        {"sample_rate": 12_345},
        {"channels": 6},
        {"qp": 52},
    ],
)
def test_bad_formats_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SlateFormat(**kwargs)  # type: ignore[arg-type]


# --- the clip --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SMALL))
def test_clip_decodes_with_no_errors_to_the_card(name: str) -> None:
    fmt, plan = SMALL[name], plan_loop(SMALL[name])
    video, _, logs = decoded(name)
    assert logs == []
    assert len(video) == plan.frames == fmt.fps * plan.seconds
    assert {(f.width, f.height) for f in video} == {(fmt.width, fmt.height)}
    assert [Fraction(f.pts or 0) * (f.time_base or 1) for f in video] == [
        Fraction(i, fmt.fps) for i in range(plan.frames)
    ]
    # The picture is the card, the same in every frame (no clock, nothing moves).
    card = render_card(CARD, fmt.width, fmt.height).astype(np.int16)
    first = video[0].to_ndarray(format="rgb24").astype(np.int16)
    assert np.abs(first - card).mean() < 3
    for frame in video[1:]:  # every keyframe too: the loop never "breathes" at a GOP boundary
        assert np.array_equal(frame.to_ndarray(format="rgb24"), video[0].to_ndarray(format="rgb24"))


@pytest.mark.parametrize("name", list(SMALL))
def test_fragments_of_at_most_200_ms_each_gop_starting_one_with_a_keyframe(name: str) -> None:
    fmt, plan = SMALL[name], plan_loop(SMALL[name])
    init, fragments = parsed(name)
    video = init.video
    assert video is not None
    gop_seconds = Fraction(plan.gop, fmt.fps)
    keyframe_starts = []
    at = Fraction(0)
    for fragment in fragments:
        assert len(fragment.tracks) == len(init.tracks)  # video and audio in the same fragment
        traf = fragment.track(video.id)
        assert traf is not None
        start = Fraction(traf.base_decode_time, video.timescale)
        assert start == at  # back to back
        duration = Fraction(traf.duration, video.timescale)
        assert duration <= Fraction(1, 5) + Fraction(1, fmt.fps)  # an LL-HLS part: about 200 ms
        if fragment.keyframe:
            keyframe_starts.append(start)
        at += duration
    assert fragments[0].keyframe
    # A keyframe starts a fragment exactly at every GOP boundary, and only there.
    assert keyframe_starts == [index * gop_seconds for index in range(plan.fragments)]
    for track in init.tracks:
        total = sum(traf.duration for f in fragments for traf in f.tracks if traf.track_id == track.id)
        assert Fraction(total, track.timescale) == plan.seconds  # every track ends with the loop


@pytest.mark.parametrize("name", ["aac", "opus", "aac_mono_30fps"])
def test_audio_is_silent_in_the_requested_codec_and_as_long_as_the_video(name: str) -> None:
    fmt, plan = SMALL[name], plan_loop(SMALL[name])
    init, _ = parsed(name)
    assert [t.kind for t in init.tracks] == [TrackKind.VIDEO, TrackKind.AUDIO]
    track = init.tracks[1]
    assert (track.codec, track.sample_rate, track.channels) == (
        CODECS[fmt.audio],
        fmt.sample_rate,
        fmt.channels,
    )
    assert init.mime.startswith('video/mp4; codecs="avc1.')
    with av.open(io.BytesIO(clip(name)), "r", format="mp4") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == fmt.audio
        assert stream.sample_rate == fmt.sample_rate
        assert stream.channels == fmt.channels
    video, audio, _ = decoded(name)
    samples = np.concatenate([frame.to_ndarray().astype(np.float64).ravel() for frame in audio])
    assert samples.size > 0
    assert np.abs(samples).max() < 1e-4
    heard = Fraction(sum(frame.samples for frame in audio), fmt.sample_rate)
    seen = Fraction(len(video), fmt.fps)
    assert abs(heard - seen) <= Fraction(plan.audio_frame_size, fmt.sample_rate)


def test_no_audio_means_no_audio_track() -> None:
    init, fragments = parsed("none")
    assert [t.kind for t in init.tracks] == [TrackKind.VIDEO]
    assert all(len(f.tracks) == 1 for f in fragments)
    assert init.mime.startswith('video/mp4; codecs="avc1.') and "," not in init.mime
    video, audio, _ = decoded("none")
    assert audio == [] and len(video) == plan_loop(SMALL["none"]).frames


def test_default_format_is_720p_aac_stereo() -> None:
    fmt = SlateFormat()
    assert (fmt.width, fmt.height, fmt.fps, fmt.audio, fmt.sample_rate, fmt.channels) == (
        1280,
        720,
        25,
        "aac",
        48_000,
        2,
    )


def test_three_passes_loop_gap_free_and_decode() -> None:
    fmt, plan = SMALL["aac"], plan_loop(SMALL["aac"])
    init, fragments = parsed("aac")
    looped = list(loop_fragments(init, fragments, passes=3))
    assert len(looped) == 3 * len(fragments)
    for track in init.tracks:
        frame = (
            Fraction(1, fmt.fps)
            if track.kind is TrackKind.VIDEO
            else Fraction(plan.audio_frame_size, fmt.sample_rate)
        )
        trafs = [f.track(track.id) for f in looped]
        end = Fraction(0)
        for traf in trafs:
            assert traf is not None
            start = Fraction(traf.base_decode_time, track.timescale)
            assert start >= end  # monotonic
            assert start - end < frame  # no gap of a frame or more
            assert start == end  # in fact none at all: every track ends with the loop
            end = start + Fraction(traf.duration, track.timescale)
        assert end == 3 * plan.seconds
    stream = init.data + b"".join(f.data for f in looped)
    assert decode_errors(stream) == ""
    with av.open(io.BytesIO(stream), "r", format="mp4") as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 3 * plan.frames


def test_encoding_is_deterministic_and_thread_safe() -> None:
    cards = [SlateCard("", f"Stage {n}", f"Next: session {n}") for n in range(4)]
    fmt = SMALL["opus"]
    alone = [encode_slate(card, fmt) for card in cards]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(encode_slate, cards, [fmt] * 4))
    assert together == alone
    assert len(set(alone)) == 4
