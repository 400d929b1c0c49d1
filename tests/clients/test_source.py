"""Publishing files: remux to fMP4, split, loop on one continuous timeline, pacing."""

from __future__ import annotations

import contextlib
import io
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import pytest

from clients.connection import SourceError
from clients.source import (
    Clip,
    Pacer,
    file_items,
    is_fragmented,
    load_clip,
    looped,
    media_start,
    send_times,
    split,
    top_level_boxes,
)
from server.encoding.testpattern import PatternSettings, encode_clip
from server.media.fmp4 import Fmp4Parser
from server.media.rewrite import stamp_producer_time
from server.media.types import InitSegment, MediaFragment

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True, capture_output=True)


def _lavfi_clip(path: Path, *codec: str) -> Path:
    """Two seconds of ffmpeg's test source with a tone, as a regular (moov at the end) MP4."""
    _ffmpeg(
        *("-f", "lavfi", "-i", "testsrc=size=320x180:rate=25"),
        *("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"),
        *("-t", "2", "-pix_fmt", "yuv420p", *codec, str(path)),
    )
    return path


@pytest.fixture(scope="module")
def plain_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "plain.mp4"
    return _lavfi_clip(path, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac")


@pytest.fixture(scope="module")
def pattern_clip() -> Clip:
    """A clip whose audio runs 10 ms longer than its video (AAC frames do not divide 4 s)."""
    return split(encode_clip("loop", 4.0, PatternSettings(width=320, height=180, gop=50)))


def _decode(data: bytes) -> tuple[int, int]:
    """Video frames and audio samples in ``data``."""
    with av.open(io.BytesIO(data)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(io.BytesIO(data)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    return frames, samples


def _ffmpeg_errors(path: Path) -> str:
    result = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stderr


def test_a_regular_mp4_is_not_fragmented(plain_mp4: Path, tmp_path: Path) -> None:
    kinds = [kind for kind, _, _ in top_level_boxes(plain_mp4)]
    assert "mdat" in kinds
    assert "moov" in kinds
    assert not is_fragmented(plain_mp4)
    fmp4 = tmp_path / "pattern.mp4"
    fmp4.write_bytes(encode_clip("x", 0.4, PatternSettings(width=320, height=180)))
    assert is_fragmented(fmp4)


def test_remux_yields_init_and_fragments_that_decode(plain_mp4: Path) -> None:
    clip = load_clip(plain_mp4, fragment_ms=200)
    codecs = [track.codec for track in clip.init.tracks]
    assert codecs[0].startswith("avc1.")
    assert codecs[1] == "mp4a.40.2"
    assert len(clip.fragments) == 10
    assert clip.fragments[0].keyframe
    assert [f.keyframe for f in clip.fragments].count(True) == 2  # -g 25 at 25 fps, 2 s
    frames, samples = _decode(clip.init.data + b"".join(f.data for f in clip.fragments))
    assert frames == 50
    assert samples == pytest.approx(96_000, abs=1024)


def test_a_fragmented_file_is_split_as_it_is(tmp_path: Path) -> None:
    data = encode_clip("as-is", 0.8, PatternSettings(width=320, height=180))
    path = tmp_path / "fragmented.mp4"
    path.write_bytes(data)
    clip = load_clip(path)
    assert clip.init.data + b"".join(f.data for f in clip.fragments) == data


def test_codecs_a_browser_cannot_play_are_refused(tmp_path: Path) -> None:
    path = _lavfi_clip(tmp_path / "mpeg4.mp4", "-c:v", "mpeg4", "-an")
    with pytest.raises(SourceError, match=r"only H\.264"):
        load_clip(path)
    with pytest.raises(SourceError, match="no such file"):
        load_clip(tmp_path / "missing.mp4")


def _assert_one_timeline(clip: Clip, fragments: list[MediaFragment]) -> None:
    """Every track continues exactly where it ended; sequence numbers count up by one."""
    ends: dict[int, int] = {}
    for fragment in fragments:
        for traf in fragment.tracks:
            if traf.track_id in ends:
                assert traf.base_decode_time == ends[traf.track_id], (fragment.sequence_number, traf)
            ends[traf.track_id] = traf.base_decode_time + traf.duration
    assert [f.sequence_number for f in fragments] == list(range(1, len(fragments) + 1))


def test_looping_three_times_is_one_continuous_stream(plain_mp4: Path, tmp_path: Path) -> None:
    clip = load_clip(plain_mp4)
    fragments = list(looped(clip, 3))
    assert len(fragments) == 3 * len(clip.fragments)
    _assert_one_timeline(clip, fragments)
    path = tmp_path / "looped.mp4"
    path.write_bytes(clip.init.data + b"".join(f.data for f in fragments))
    assert _ffmpeg_errors(path) == ""
    frames, _ = _decode(path.read_bytes())
    assert frames == 150


def test_looping_keeps_audio_and_video_together(pattern_clip: Clip) -> None:
    """Over 30 passes the audio/video offset stays within one video frame, and no track
    ever goes backwards or leaves a gap longer than the longest sample of any track."""
    scales = {t.id: t.timescale for t in pattern_clip.init.tracks}
    sample = {
        t.track_id: Fraction(t.duration // t.sample_count, scales[t.track_id])
        for t in pattern_clip.fragments[0].tracks
    }
    passes = len(pattern_clip.fragments)
    fragments = list(looped(pattern_clip, 30))
    ends: dict[int, int] = {}
    for index in range(0, len(fragments), passes):
        starts = {
            t.track_id: Fraction(t.base_decode_time, scales[t.track_id]) for t in fragments[index].tracks
        }
        source = {
            t.track_id: Fraction(t.base_decode_time, scales[t.track_id])
            for t in pattern_clip.fragments[0].tracks
        }
        offsets = [starts[k] - source[k] for k in starts]
        assert max(offsets) - min(offsets) <= Fraction(1, 25)
    for fragment in fragments:
        for traf in fragment.tracks:
            end = ends.get(traf.track_id, traf.base_decode_time)
            gap = Fraction(traf.base_decode_time - end, scales[traf.track_id])
            assert 0 <= gap <= max(sample.values())
            ends[traf.track_id] = traf.base_decode_time + traf.duration
    assert [f.sequence_number for f in fragments] == list(range(1, 30 * passes + 1))


def _reparsed(clip: Clip, fragments: list[MediaFragment]) -> list[MediaFragment]:
    items = Fmp4Parser().feed(clip.init.data + b"".join(f.data for f in fragments))
    return [item for item in items if isinstance(item, MediaFragment)]


def test_a_prft_is_put_in_front_of_fragments_without_one(plain_mp4: Path, tmp_path: Path) -> None:
    clip = load_clip(plain_mp4)
    assert all(f.producer_time is None for f in clip.fragments)
    stamped = [stamp_producer_time(f, clip.init, 1_607_238_000.5 + i) for i, f in enumerate(clip.fragments)]
    for before, after, again in zip(clip.fragments, stamped, _reparsed(clip, stamped), strict=True):
        assert after.data.endswith(before.data)
        assert again == after  # the recorded offsets moved with the bytes
    assert [f.producer_time for f in stamped] == pytest.approx([1_607_238_000.5 + i for i in range(10)])
    path = tmp_path / "stamped.mp4"
    path.write_bytes(clip.init.data + b"".join(f.data for f in stamped))
    assert _ffmpeg_errors(path) == ""
    assert _decode(path.read_bytes())[0] == 50


def test_an_existing_prft_is_overwritten(pattern_clip: Clip) -> None:
    fragment = pattern_clip.fragments[3]
    stamped = stamp_producer_time(fragment, pattern_clip.init, 1_607_238_000.25)
    assert len(stamped.data) == len(fragment.data)
    (again,) = _reparsed(pattern_clip, [stamped])
    assert again.producer_time == pytest.approx(1_607_238_000.25)
    assert again.tracks == fragment.tracks


def test_send_times_follow_the_media_timeline_across_loops(plain_mp4: Path) -> None:
    clip = load_clip(plain_mp4)
    times = send_times(list(looped(clip, 2)), clip.init, start=1000.0)
    assert times[0] == 1000.0
    assert times == pytest.approx([1000.0 + 0.2 * i for i in range(20)])
    assert media_start(clip.fragments[3], clip.init) == Fraction(3, 5)


def test_pacer_waits_for_media_time_and_re_anchors_when_late() -> None:
    pacer = Pacer(max_late=1.0)
    assert pacer.due(Fraction(10), now=500.0) == 500.0  # the first item goes at once
    assert pacer.due(Fraction(12), now=500.1) == 502.0
    assert pacer.due(Fraction(13), now=503.5) == 503.0  # half a second late: keep the schedule
    assert pacer.due(Fraction(14), now=510.0) == 510.0  # far behind: start over from now
    assert pacer.due(Fraction(15), now=510.0) == 511.0


async def test_file_items_are_paced_in_real_time(plain_mp4: Path) -> None:
    clip = load_clip(plain_mp4)
    short = Clip(clip.init, clip.fragments[:3])
    arrivals: list[float] = []
    items: list[InitSegment | MediaFragment] = []
    started = time.monotonic()
    async for item in file_items(short):
        items.append(item)
        arrivals.append(time.monotonic() - started)
    assert isinstance(items[0], InitSegment)
    assert len(items) == 4
    assert arrivals[1] < 0.1
    assert arrivals[3] == pytest.approx(0.4, abs=0.1)
    # Each fragment carries the wall clock of the moment it was handed out.
    sent = [item.producer_time for item in items[1:] if isinstance(item, MediaFragment)]
    assert sent[2] == pytest.approx(time.time(), abs=0.1)
    assert sent[2] - sent[0] == pytest.approx(0.4, abs=0.1)


async def test_file_items_loop_until_closed(plain_mp4: Path) -> None:
    clip = load_clip(plain_mp4)
    short = Clip(clip.init, clip.fragments[:1])
    sequence: list[int] = []
    async with contextlib.aclosing(file_items(short, loop=True)) as items:
        async for item in items:
            if isinstance(item, MediaFragment):
                sequence.append(item.sequence_number)
            if len(sequence) == 3:
                break
    assert sequence == [1, 2, 3]
