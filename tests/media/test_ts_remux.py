"""MPEG-TS to FLV messages (server/media/ts_remux.py) and on through the FLV remuxer: ffmpeg's TS
in random chunkings gives one init segment and fragments that ffmpeg decodes with no error,
with the source's frames, keyframes and presentation times (within 1 ms)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import MediaError
from server.media.flv import FlvTag, TagKind
from server.media.flv_remux import Remuxer
from server.media.mpegts import AAC_ADTS, PesPacket, TsDemuxer
from server.media.ts_remux import TsToFlv
from server.media.types import InitSegment, MediaFragment
from tests.media.flv_files import Frame, frames
from tests.media.media_files import decode_errors
from tests.media.ts_files import PACKET, chunked, packets, pid, ts

FUZZ = settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
Item = InitSegment | MediaFragment


def flv_tags(chunks: list[bytes]) -> tuple[list[FlvTag], TsToFlv]:
    demuxer, converter = TsDemuxer(), TsToFlv()
    tags: list[FlvTag] = []
    for chunk in chunks:
        for pes in demuxer.feed(chunk):
            tags += converter.feed(pes)
    for pes in demuxer.close():
        tags += converter.feed(pes)
    return tags + converter.end(), converter


def remux(chunks: list[bytes]) -> list[Item]:
    remuxer, items = Remuxer(fragment_ms=200), []
    for tag in flv_tags(chunks)[0]:
        items += remuxer.feed(tag.kind, tag.timestamp, tag.payload)
    return items + remuxer.end()


def relative(found: dict[str, list[Frame]]) -> dict[str, list[Frame]]:
    """Times from the program's first time on (the zero audio and video share)."""
    zero = min(min(f.dts for f in kind) for kind in found.values())
    return {k: [Frame(f.dts - zero, f.pts - zero, f.keyframe) for f in v] for k, v in found.items()}


@pytest.mark.parametrize("name", ["h264_aac_bframes", "h264_only", "aac_only", "hevc_aac"])
@pytest.mark.parametrize("seed", [1, 2])
def test_remuxed_streams_decode_with_the_source_frames_and_times(name: str, seed: int) -> None:
    source = ts(name)
    items = remux(chunked(source, seed))
    assert isinstance(items[0], InitSegment)
    assert not any(isinstance(item, InitSegment) for item in items[1:])  # both tracks from the start
    data = b"".join(item.data for item in items)
    assert decode_errors(data) == ""
    expected, result = relative(frames(source, "mpegts")), frames(data, "mp4")
    assert set(result) == set(expected)
    for kind in expected:
        assert len(result[kind]) == len(expected[kind]), kind
        assert [f.keyframe for f in result[kind]] == [f.keyframe for f in expected[kind]], kind
        assert [f.pts for f in result[kind]] == pytest.approx([f.pts for f in expected[kind]], abs=0.001), (
            kind
        )
    if "video" in expected:
        assert [f.dts for f in result["video"]] == pytest.approx(
            [f.dts for f in expected["video"]], abs=0.001
        )


def test_parameter_sets_are_sent_once_though_every_keyframe_repeats_them() -> None:
    tags, converter = flv_tags([ts("h264_aac_bframes")])
    video = [t for t in tags if t.kind is TagKind.VIDEO]
    assert [t.payload[:2] for t in video].count(b"\x17\x00") == 1
    assert [t.payload[:2] for t in video].count(b"\x17\x01") == 2  # the two keyframes
    assert video[0].payload[:2] == b"\x17\x00"
    audio = [t for t in tags if t.kind is TagKind.AUDIO]
    assert audio[0].payload == b"\xaf\x00\x11\x88"  # AAC LC (2), 48 kHz (3), mono (1)
    assert converter.warnings == {}
    # No access unit delimiter (type 9) nor parameter set is left in a sample.
    for tag in video[1:]:
        data, pos = tag.payload[5:], 0
        while pos < len(data):
            size = int.from_bytes(data[pos : pos + 4], "big")
            assert data[pos + 4] & 0x1F not in (7, 8, 9)
            pos += 4 + size
        assert pos == len(data)


def test_hevc_is_sent_as_enhanced_rtmp() -> None:
    tags, _ = flv_tags([ts("hevc_aac")])
    video = [t.payload for t in tags if t.kind is TagKind.VIDEO]
    assert video[0][:5] == b"\x90hvc1"
    assert video[1][:5] == b"\x91hvc1"
    assert {v[:5] for v in video[2:]} <= {b"\x91hvc1", b"\xa1hvc1"}


def test_a_stream_joined_mid_gop_starts_at_the_next_keyframe() -> None:
    source = ts("h264_aac_bframes")
    all_packets = packets(source)
    joined = b"".join(all_packets[len(all_packets) // 4 :])
    tags, converter = flv_tags([joined])
    assert converter.warnings["video_before_keyframe"] > 0
    video = [t for t in tags if t.kind is TagKind.VIDEO]
    assert video[0].payload[:2] == b"\x17\x00" and video[1].payload[:2] == b"\x17\x01"
    items = remux([joined])
    data = b"".join(item.data for item in items)
    assert decode_errors(data) == ""
    assert len(frames(data, "mp4")["video"]) == 25  # the second second, from its keyframe


def test_a_lost_packet_skips_video_to_the_next_keyframe() -> None:
    source = ts("h264_only")
    all_packets = packets(source)
    video_pid = TsDemuxer().feed(source)[0].pid
    at = next(i for i in range(len(all_packets) // 4, len(all_packets)) if pid(all_packets[i]) == video_pid)
    damaged = b"".join(all_packets[:at] + all_packets[at + 1 :])
    items = remux([damaged])
    data = b"".join(item.data for item in items)
    assert decode_errors(data) == ""
    result = frames(data, "mp4")["video"]
    assert [f.keyframe for f in result].count(True) == 2
    assert 25 < len(result) < 50


def test_audio_without_adts_is_bad_ts() -> None:
    converter = TsToFlv()
    packet = PesPacket(0x101, AAC_ADTS, 0, 0, bytes(64), False, False, frozenset({AAC_ADTS}))
    with pytest.raises(MediaError) as info:
        converter.feed(packet)
    assert info.value.code == "media.bad_ts"


def test_an_adts_frame_cut_between_pes_packets_is_completed() -> None:
    tags, _ = flv_tags([ts("aac_only")])
    frames_whole = [t.payload for t in tags]
    # The same audio, each PES split in two at an odd place (the second half has no PTS).
    demuxer, converter = TsDemuxer(), TsToFlv()
    split: list[FlvTag] = []
    for pes in demuxer.feed(ts("aac_only")) + demuxer.close():
        half = len(pes.data) // 2 + 3
        first = PesPacket(
            pes.pid, pes.stream_type, pes.pts, pes.dts, pes.data[:half], False, False, pes.program
        )
        second = PesPacket(pes.pid, pes.stream_type, None, None, pes.data[half:], False, False, pes.program)
        split += converter.feed(first) + converter.feed(second)
    split += converter.end()
    assert [t.payload for t in split] == frames_whole
    assert [t.timestamp for t in split] == [t.timestamp for t in tags]


@FUZZ
@given(
    st.integers(0, 2**32),
    st.lists(st.tuples(st.integers(0, 80 * PACKET - 1), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_mutated_streams_raise_only_media_errors(seed: int, edits: list[tuple[int, int]]) -> None:
    data = bytearray(ts("h264_aac_bframes")[: 80 * PACKET])
    for at, value in edits:
        data[at] = value
    with contextlib.suppress(MediaError):
        remux(chunked(bytes(data), seed, 700))
