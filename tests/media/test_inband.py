"""In-band H.264 parameter sets: a decoder that never re-reads the init still decodes a
resolution change; the patched fragments stay valid."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av

from server.encoding.testpattern import PatternSettings, encode_clip
from server.media.fmp4 import Fmp4Parser, split_clip
from server.media.inband import parameter_sets, with_parameter_sets
from server.media.timeline import Timeline
from server.media.types import InitSegment, MediaFragment, TrackKind
from tests.conftest import ffmpeg


def clip(width: int, height: int) -> tuple[InitSegment, list[MediaFragment]]:
    settings = PatternSettings(width=width, height=height, gop=10, preset="ultrafast", busy=False)
    return split_clip(encode_clip("IN", 2.0, settings))


def spliced(inband: bool) -> bytes:
    """One init (the first source's), then both sources' fragments on one timeline, as a
    demuxer that skips a second moov would see them."""
    (init_a, a), (init_b, b) = clip(160, 90), clip(256, 144)
    timeline = Timeline()
    out = [init_a.data]
    for init, fragments in ((init_a, a), (init_b, b)):
        timeline.splice()
        for fragment in fragments:
            placed = timeline.place(fragment, init)
            if inband:
                placed = with_parameter_sets(placed, init)
            out.append(placed.data)
    return b"".join(out)


def decode_errors(path: Path) -> str:
    run = subprocess.run(
        [ffmpeg(), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    )
    return run.stderr.strip()


def test_a_resolution_change_decodes_with_in_band_parameter_sets(tmp_path: Path) -> None:
    with_sets, without = tmp_path / "inband.mp4", tmp_path / "plain.mp4"
    with_sets.write_bytes(spliced(inband=True))
    without.write_bytes(spliced(inband=False))
    assert decode_errors(without), "the control should break: the second source's SPS is unknown"
    assert decode_errors(with_sets) == ""
    with av.open(str(with_sets)) as container:
        sizes = {(f.width, f.height) for f in container.decode(video=0)}
    assert sizes == {(160, 90), (256, 144)}


def test_patched_fragments_parse_and_only_keyframes_change() -> None:
    init, fragments = clip(160, 90)
    assert init.video is not None
    found = parameter_sets(init.video.config)
    assert found is not None and found[1] == 4
    parser = Fmp4Parser()
    items = parser.feed(init.data)
    for fragment in fragments:
        patched = with_parameter_sets(fragment, init)
        if fragment.keyframe:
            assert len(patched.data) == len(fragment.data) + len(found[0])
        else:
            assert patched is fragment
        items += parser.feed(patched.data)
    parsed = [i for i in items if isinstance(i, MediaFragment)]
    assert [p.keyframe for p in parsed] == [f.keyframe for f in fragments]
    assert [[t.duration for t in p.tracks] for p in parsed] == [
        [t.duration for t in f.tracks] for f in fragments
    ]


def test_audio_only_and_non_h264_pass_unchanged() -> None:
    init, fragments = clip(160, 90)
    audio_only = InitSegment(init.data, tuple(t for t in init.tracks if t.kind is TrackKind.AUDIO))
    assert with_parameter_sets(fragments[0], audio_only) is fragments[0]
    assert parameter_sets(b"\x00\x00\x00\x08mp4a") is None
