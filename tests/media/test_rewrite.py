"""Timestamp rewriting (server/media/rewrite.py) on real fragments: re-parsed, byte-compared,
and decoded by ffmpeg and PyAV with the new times."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import MediaError
from server.media.fmp4 import Fmp4Parser
from server.media.rewrite import rewrite_fragment
from server.media.types import InitSegment, MediaFragment
from tests.media.media_files import decode_errors, packets, stream, with_implicit_base, with_v0_tfdt

SHIFT_SECONDS = 400_000  # over 2**32 ticks at both 12800 and 48000 Hz: forces 64-bit tfdt


def parse(data: bytes) -> tuple[InitSegment, list[MediaFragment]]:
    items = Fmp4Parser().feed(data)
    init, fragments = items[0], items[1:]
    assert isinstance(init, InitSegment) and all(isinstance(f, MediaFragment) for f in fragments)
    return init, fragments  # type: ignore[return-value]


def shifted(init: InitSegment, fragment: MediaFragment, seconds: int) -> dict[int, int]:
    """Every track moved by the same number of seconds, each in its own timescale."""
    timescales = {t.id: t.timescale for t in init.tracks}
    return {t.track_id: t.base_decode_time + seconds * timescales[t.track_id] for t in fragment.tracks}


def changed_bytes(before: bytes, after: bytes) -> set[int]:
    assert len(before) == len(after)
    return {i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b}


@pytest.mark.parametrize("name", ["h264_aac", "h264_aac_bframes", "opus_only", "h264_aac_prft"])
def test_rewrite_in_place_changes_only_the_times(name: str) -> None:
    init, fragments = parse(stream(name))
    rewritten = []
    for index, fragment in enumerate(fragments):
        times = {t.track_id: t.base_decode_time + 1000 * (index + 1) for t in fragment.tracks}
        new = rewrite_fragment(fragment, decode_times=times, sequence_number=500 + index)
        assert (
            fragment.data == stream(name)[stream(name).index(fragment.data) :][: len(fragment.data)]
        )  # input intact
        fields = {fragment.mfhd_offset + 12 + i for i in range(4)}
        fields |= {t.tfdt_offset + 12 + i for t in fragment.tracks for i in range(8)}
        assert changed_bytes(fragment.data, new.data) <= fields
        assert [t.base_decode_time for t in new.tracks] == list(times.values())
        back = rewrite_fragment(
            new, decode_times=fragment_times(fragment), sequence_number=fragment.sequence_number
        )
        assert back == fragment  # a round trip restores every byte and value
        rewritten.append(new)
    _, reparsed = parse(init.data + b"".join(f.data for f in rewritten))
    assert reparsed == rewritten
    assert [f.sequence_number for f in reparsed] == [500 + i for i in range(len(fragments))]


def fragment_times(fragment: MediaFragment) -> dict[int, int]:
    return {t.track_id: t.base_decode_time for t in fragment.tracks}


def test_tracks_not_named_keep_their_times() -> None:
    _, fragments = parse(stream("h264_aac"))
    fragment = fragments[1]
    video, audio = fragment.tracks
    new = rewrite_fragment(fragment, decode_times={video.track_id: 7, 99: 1}, sequence_number=1)
    assert new.tracks == (dataclasses.replace(video, base_decode_time=7), audio)


@pytest.mark.parametrize("name", ["h264_aac", "h264_aac_prft"])
def test_v0_tfdt_grows_to_v1_and_the_stream_still_decodes(name: str) -> None:
    source = with_v0_tfdt(stream(name))
    init, fragments = parse(source)
    original = parse(stream(name))[1]
    assert [[(t.tfdt_version, t.base_decode_time) for t in f.tracks] for f in fragments] == [
        [(0, t.base_decode_time) for t in f.tracks] for f in original
    ]
    rewritten = []
    for fragment in fragments:
        times = shifted(init, fragment, SHIFT_SECONDS)
        new = rewrite_fragment(fragment, decode_times=times, sequence_number=fragment.sequence_number)
        assert len(new.data) == len(fragment.data) + 4 * len(fragment.tracks)
        assert [t.tfdt_version for t in new.tracks] == [1] * len(fragment.tracks)
        assert [t.tfdt_offset for t in new.tracks] == [
            t.tfdt_offset + 4 * i for i, t in enumerate(fragment.tracks)
        ]
        rewritten.append(new)
    output = init.data + b"".join(f.data for f in rewritten)
    _, reparsed = parse(output)
    assert reparsed == rewritten
    assert decode_errors(output) == ""
    before, after = packets(source), packets(output)
    for track in init.tracks:
        kind, shift = track.kind.value, SHIFT_SECONDS * track.timescale
        assert [(p.dts + shift, p.duration, p.keyframe) for p in before[kind]] == [
            (p.dts, p.duration, p.keyframe) for p in after[kind]
        ]


def test_growth_with_implicit_base_offsets() -> None:
    """Only the first traf's data counts from the moof; the second one's base moves with it."""
    source = with_implicit_base(with_v0_tfdt(stream("h264_aac")))
    init, fragments = parse(source)
    rewritten = [
        rewrite_fragment(f, decode_times=shifted(init, f, SHIFT_SECONDS), sequence_number=f.sequence_number)
        for f in fragments
    ]
    output = init.data + b"".join(f.data for f in rewritten)
    assert parse(output)[1] == rewritten
    assert decode_errors(output) == ""
    assert len(packets(output)["audio"]) == len(packets(source)["audio"])


def test_only_one_track_grows() -> None:
    init, fragments = parse(with_v0_tfdt(stream("h264_aac")))
    fragment = fragments[1]
    video, audio = fragment.tracks
    new = rewrite_fragment(
        fragment, decode_times={video.track_id: 5, audio.track_id: 2**32}, sequence_number=9
    )
    assert len(new.data) == len(fragment.data) + 4
    assert [(t.base_decode_time, t.tfdt_version, t.tfdt_offset) for t in new.tracks] == [
        (5, 0, video.tfdt_offset),
        (2**32, 1, audio.tfdt_offset),
    ]
    assert parse(init.data + new.data)[1] == [new]
    small = rewrite_fragment(fragment, decode_times={audio.track_id: 2**32 - 1}, sequence_number=9)
    assert len(small.data) == len(fragment.data) and small.tracks[1].tfdt_version == 0


@settings(max_examples=40, deadline=None, database=None)
@given(
    index=st.integers(0, 2),
    video=st.integers(0, 2**64 - 1),
    audio=st.integers(0, 2**64 - 1),
    sequence=st.integers(0, 2**32 - 1),
)
def test_any_times_reparse_to_themselves(index: int, video: int, audio: int, sequence: int) -> None:
    init, fragments = parse(with_v0_tfdt(stream("h264_aac")))
    new = rewrite_fragment(fragments[index], decode_times={1: video, 2: audio}, sequence_number=sequence)
    assert parse(init.data + new.data)[1] == [new]
    assert [t.base_decode_time for t in new.tracks] == [video, audio] and new.sequence_number == sequence


def test_values_that_do_not_fit_are_a_callers_bug() -> None:
    _, fragments = parse(stream("h264_aac"))
    with pytest.raises(ValueError):
        rewrite_fragment(fragments[0], decode_times={1: -1}, sequence_number=1)
    with pytest.raises(ValueError):
        rewrite_fragment(fragments[0], decode_times={1: 2**64}, sequence_number=1)
    with pytest.raises(ValueError):
        rewrite_fragment(fragments[0], decode_times={}, sequence_number=2**32)


def test_wrong_recorded_offsets_are_refused() -> None:
    _, fragments = parse(stream("h264_aac"))
    broken = dataclasses.replace(fragments[0], mfhd_offset=fragments[0].mfhd_offset + 1)
    with pytest.raises(MediaError) as info:
        rewrite_fragment(broken, decode_times={}, sequence_number=1)
    assert info.value.code == "media.bad_fragment"
