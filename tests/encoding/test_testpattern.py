"""The live test pattern as fMP4: init and fragment structure, prft, and that it all decodes."""

from __future__ import annotations

import io
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest

from server.encoding.picture import GLYPH_HEIGHT, PatternPainter, clock_text, text_mask
from server.encoding.testpattern import (
    PatternEncoder,
    PatternSettings,
    audio_priming,
    encode_clip,
    parse_bitrate,
)
from server.media.fmp4 import Fmp4Parser
from server.media.types import InitSegment, MediaFragment

SECONDS = 4
FPS = 25
GOP = 25
START = 1_607_238_000.25  # the picture's clock: 07:00:00.250 UTC


@dataclass
class Encoded:
    data: bytes
    init: InitSegment
    fragments: list[MediaFragment]
    encoded_at: dict[int, float]  # frame index -> real wall time when it was handed to the encoder


def _split(data: bytes) -> tuple[InitSegment, list[MediaFragment]]:
    items = Fmp4Parser().feed(data)
    assert isinstance(items[0], InitSegment)
    fragments = [item for item in items[1:] if isinstance(item, MediaFragment)]
    assert len(fragments) == len(items) - 1
    return items[0], fragments


@pytest.fixture(scope="module")
def encoded() -> Encoded:
    """Four seconds encoded frame by frame as a live caller would, but without sleeping."""
    settings = PatternSettings(label="stern-uk", gop=GOP, fragment_ms=200, fps=FPS)
    encoder = PatternEncoder(settings, start=START)
    chunks: list[bytes] = []
    encoded_at: dict[int, float] = {}
    for index in range(SECONDS * FPS):
        encoded_at[index] = time.time()
        chunks.append(encoder.encode_until(encoder.frame_time(index)))
        assert encoder.frames == index + 1
    chunks.append(encoder.close())
    data = b"".join(chunks)
    return Encoded(data, *_split(data), encoded_at)


def test_init_segment_has_h264_and_aac(encoded: Encoded) -> None:
    init = encoded.init
    assert encoded.data.startswith(init.data)
    codecs = [track.codec for track in init.tracks]
    assert len(codecs) == 2
    assert codecs[0].startswith("avc1.")
    assert codecs[1] == "mp4a.40.2"
    assert init.mime.startswith('video/mp4; codecs="avc1.')
    assert init.video is not None
    assert (init.video.width, init.video.height) == (640, 360)


def test_fragments_follow_gop_and_fragment_duration(encoded: Encoded) -> None:
    init = encoded.init
    video = init.video
    assert video is not None
    frame = video.timescale // FPS
    trafs = [f.track(video.id) for f in encoded.fragments]
    assert all(traf is not None for traf in trafs)
    durations = [traf.duration for traf in trafs if traf is not None]
    assert len(encoded.fragments) == SECONDS * FPS // 5
    assert all(abs(d - 5 * frame) <= frame for d in durations)
    assert sum(durations) == SECONDS * FPS * frame
    # A keyframe every GOP frames, and every fragment that starts one says so.
    starts = [traf.base_decode_time // frame for traf in trafs if traf is not None]
    keyframes = [start for start, f in zip(starts, encoded.fragments, strict=True) if f.keyframe]
    assert keyframes == list(range(0, SECONDS * FPS, GOP))
    assert [f.sequence_number for f in encoded.fragments] == list(range(1, len(encoded.fragments) + 1))
    # Both tracks start at zero: the audio priming does not shift the video.
    assert all(t.base_decode_time == 0 for t in encoded.fragments[0].tracks)


def test_every_fragment_carries_the_wall_clock_of_its_first_frame(encoded: Encoded) -> None:
    video = encoded.init.video
    assert video is not None
    frame = video.timescale // FPS
    for fragment in encoded.fragments:
        traf = fragment.track(video.id)
        assert traf is not None
        assert fragment.producer_time is not None
        first_frame = traf.base_decode_time // frame
        # prft is the clock when libx264 took the fragment's first frame (rounded down to the
        # millisecond): after that frame was handed over, before the next one was.
        handed = encoded.encoded_at[first_frame]
        following = encoded.encoded_at.get(first_frame + 1, float("inf"))
        assert handed - 0.001 <= fragment.producer_time <= following
        assert fragment.data.index(b"prft") < fragment.moof_offset


def test_the_stream_decodes_without_errors(encoded: Encoded, tmp_path: Path) -> None:
    with av.open(io.BytesIO(encoded.data)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(io.BytesIO(encoded.data)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert frames == SECONDS * FPS
    assert samples == pytest.approx(SECONDS * 48_000, abs=2048)
    path = tmp_path / "pattern.mp4"
    path.write_bytes(encoded.data)
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stderr == ""


def _decoded_luma(data: bytes, indexes: set[int]) -> dict[int, np.ndarray]:
    planes: dict[int, np.ndarray] = {}
    with av.open(io.BytesIO(data)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in indexes:
                planes[index] = frame.to_ndarray(format="gray")
    return planes


def test_the_clock_digits_are_legible_after_encoding(encoded: Encoded) -> None:
    painter = PatternPainter("stern-uk", 640, 360)
    height = GLYPH_HEIGHT * painter.clock_scale
    top = (360 - height) // 2
    frames = _decoded_luma(encoded.data, {0, FPS})
    bands = {}
    for index, luma in frames.items():
        expected = text_mask(clock_text(START + index / FPS), painter.clock_scale)
        left = (640 - expected.shape[1]) // 2
        band = luma[top : top + height, left : left + expected.shape[1]]
        # Ink is bright and paper dark in the decoded picture, pixel for pixel but for the
        # edges the encoder blurs.
        matches = (band > 128) == expected
        assert matches.mean() > 0.97
        bands[index] = band > 128
    assert clock_text(START) == "07:00:00.250"
    assert not np.array_equal(bands[0], bands[FPS])


def test_opus_audio_and_short_clips() -> None:
    data = encode_clip("opus", 1.0, PatternSettings(audio="opus", width=320, height=180, gop=10))
    init, fragments = _split(data)
    assert [t.codec for t in init.tracks][1] == "opus"
    assert fragments[0].keyframe
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 25


def test_video_only() -> None:
    init, fragments = _split(encode_clip("quiet", 0.4, PatternSettings(audio="none", width=320, height=180)))
    assert len(init.tracks) == 1
    assert len(fragments) == 2


def test_priming_of_the_audio_encoders() -> None:
    assert audio_priming("aac") == 1024
    assert audio_priming("libopus") == 312


@pytest.mark.parametrize(("text", "bits"), [("1000k", 1_000_000), ("2.5M", 2_500_000), ("800000", 800_000)])
def test_parse_bitrate(text: str, bits: int) -> None:
    assert parse_bitrate(text) == bits


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="bitrate"):
        parse_bitrate("fast")
    with pytest.raises(ValueError, match="fps"):
        PatternSettings(fps=0)
    with pytest.raises(ValueError, match="audio"):
        PatternSettings(audio="mp3")  # type: ignore[arg-type]
