"""FLV tags and messages (server/media/flv.py) on real ffmpeg streams, cross-checked with PyAV;
any chunking; truncations and mutations raise only our own errors."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import MediaError
from server.media.flv import (
    FlvReader,
    FlvTag,
    PacketType,
    ReaderState,
    TagKind,
    parse_audio,
    parse_video,
)
from tests.media.flv_files import flv, frames

FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def read(data: bytes, **limits: int) -> list[FlvTag]:
    reader = FlvReader(**limits)
    tags = reader.feed(data)
    reader.close()
    return tags


def error_code(data: bytes, **limits: int) -> str:
    reader = FlvReader(**limits)

    def feed_all() -> None:
        reader.feed(data)
        reader.close()

    with pytest.raises(MediaError) as info:
        feed_all()
    assert reader.state is ReaderState.FAILED
    with pytest.raises(MediaError) as again:
        reader.feed(b"\0")
    assert again.value.code == info.value.code
    return info.value.code


def tag_bytes(kind: int, timestamp: int, body: bytes) -> bytes:
    header = bytes([kind]) + len(body).to_bytes(3, "big") + (timestamp & 0xFFFFFF).to_bytes(3, "big")
    return header + bytes([timestamp >> 24]) + b"\0\0\0" + body + struct.pack(">I", 11 + len(body))


FILE_HEADER = b"FLV\x01\x05" + struct.pack(">II", 9, 0)


@pytest.mark.parametrize("name", ["h264_aac_bframes", "h264_only", "hevc_opus"])
def test_tags_match_what_pyav_reads(name: str) -> None:
    tags = read(flv(name))
    source = frames(flv(name), "flv")
    for kind, stream in ((TagKind.VIDEO, "video"), (TagKind.AUDIO, "audio")):
        coded = [
            t
            for t in tags
            if t.kind is kind
            and (parse_video if kind is TagKind.VIDEO else parse_audio)(t.payload).packet
            is PacketType.CODED_FRAMES
        ]
        assert [t.timestamp / 1000 for t in coded] == pytest.approx([f.dts for f in source.get(stream, [])])
        if kind is TagKind.VIDEO:
            messages = [parse_video(t.payload) for t in coded]
            assert [m.keyframe for m in messages] == [f.keyframe for f in source["video"]]
            pts = [(t.timestamp + m.composition_offset) / 1000 for t, m in zip(coded, messages, strict=True)]
            assert pts == pytest.approx([f.pts for f in source["video"]])
    assert tags[0].kind is TagKind.SCRIPT  # onMetaData


def test_enhanced_rtmp_messages_are_read() -> None:
    tags = read(flv("hevc_opus"))
    video = [parse_video(t.payload) for t in tags if t.kind is TagKind.VIDEO]
    audio = [parse_audio(t.payload) for t in tags if t.kind is TagKind.AUDIO]
    assert video[0].packet is PacketType.SEQUENCE_START and video[0].codec == "hvc1"
    assert audio[0].packet is PacketType.SEQUENCE_START and audio[0].data[:8] == b"OpusHead"
    assert {m.codec for m in video} == {"hvc1"} and {m.codec for m in audio} == {"Opus"}
    assert any(m.composition_offset > 0 for m in video)  # B-frames


def test_modex_prefix_and_one_track_multitrack_and_codedframesx() -> None:
    body = b"\x00\x00\x00\x05nalus"
    # ModEx (7) with a 3-byte nanosecond offset, then CodedFrames (modExType 0 | PacketType 1).
    modex = bytes([0x80 | 0x10 | 7, 2, 1, 2, 3, 0x01]) + b"hvc1" + b"\0\0\x28" + body
    message = parse_video(modex)
    assert (message.codec, message.packet, message.keyframe, message.composition_offset) == (
        "hvc1", PacketType.CODED_FRAMES, True, 40,
    )  # fmt: skip
    assert message.data == body
    frames_x = parse_video(bytes([0x80 | 0x20 | 3]) + b"av01" + body)
    assert (frames_x.codec, frames_x.keyframe, frames_x.composition_offset, frames_x.data) == (
        "av01", False, 0, body,
    )  # fmt: skip
    one_track = parse_video(bytes([0x80 | 0x10 | 6, 0x00 | 1]) + b"avc1" + b"\x00" + b"\0\0\0" + body)
    assert (one_track.codec, one_track.packet, one_track.data) == ("avc1", PacketType.CODED_FRAMES, body)
    with pytest.raises(MediaError) as info:
        parse_video(bytes([0x80 | 0x10 | 6, 0x10 | 1]) + b"avc1" + b"\x00" + b"\0\0\0" + body)
    assert info.value.code == "media.unsupported_codec"
    command = parse_video(bytes([0x80 | 0x50 | 1, 0]))  # VideoCommand StartSeek: no FourCC
    assert command.packet is PacketType.IGNORED
    metadata = parse_video(bytes([0x80 | 0x50 | 4]) + b"hvc1" + b"\x02\x00\x0dcolorInfo")
    assert metadata.packet is PacketType.IGNORED and metadata.codec == "hvc1"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x12\x00\x00\x00", "media.unsupported_codec"),  # Sorenson H.263
        (b"\x17\x00\x00", "media.truncated_flv"),  # AVC without its composition time
        (b"\x17\x05\x00\x00\x00", "media.bad_flv"),  # AVCPacketType 5
        (b"\x90vp09", "media.unsupported_codec"),
        (b"\x9fhvc1\0\0\0", "media.bad_flv"),  # PacketType 15
        (b"\x97\xff", "media.truncated_flv"),  # ModEx cut short
        (b"", "media.truncated_flv"),
    ],
)
def test_bad_video_messages(payload: bytes, code: str) -> None:
    with pytest.raises(MediaError) as info:
        parse_video(payload)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x2f\xff\xfb", "media.unsupported_codec"),  # MP3
        (b"\xaf\x07", "media.bad_flv"),
        (b"\xaf", "media.truncated_flv"),
        (b"\x90.mp3", "media.unsupported_codec"),
        (b"\x93Opus", "media.bad_flv"),
    ],
)
def test_bad_audio_messages(payload: bytes, code: str) -> None:
    with pytest.raises(MediaError) as info:
        parse_audio(payload)
    assert info.value.code == code


def test_bad_streams_get_their_codes() -> None:
    good = FILE_HEADER + tag_bytes(9, 0, b"\x17\x01\0\0\0")
    assert read(good) == [FlvTag(TagKind.VIDEO, 0, b"\x17\x01\0\0\0")]
    assert error_code(b"FLX" + good[3:]) == "media.bad_flv"
    assert error_code(good[:3] + b"\x02" + good[4:]) == "media.bad_flv"
    assert error_code(good[:-1] + b"\x99") == "media.bad_flv"  # PreviousTagSize disagrees
    assert error_code(good[:-1]) == "media.truncated_flv"
    assert error_code(FILE_HEADER[:5]) == "media.truncated_flv"
    assert error_code(FILE_HEADER + tag_bytes(0x49, 0, b"x")) == "media.bad_flv"  # reserved bits
    assert error_code(FILE_HEADER + bytes([9, 0xFF, 0xFF, 0xFF]) + bytes(7), max_tag_size=1000) == (
        "media.tag_too_large"
    )


def test_timestamp_extended_is_the_high_byte_and_unknown_tags_are_skipped() -> None:
    data = (
        FILE_HEADER
        + tag_bytes(8, 0x12345678, b"\xaf\x01x")
        + tag_bytes(15, 0, b"??")
        + tag_bytes(18, 5, b"m")
    )
    assert read(data) == [FlvTag(TagKind.AUDIO, 0x12345678, b"\xaf\x01x"), FlvTag(TagKind.SCRIPT, 5, b"m")]


def test_a_huge_tag_is_refused_from_its_header() -> None:
    reader = FlvReader(max_tag_size=100)
    reader.feed(FILE_HEADER)
    with pytest.raises(MediaError) as info:
        reader.feed(bytes([9]) + (101).to_bytes(3, "big") + bytes(7))
    assert info.value.code == "media.tag_too_large"
    assert reader.buffered <= 11


@FUZZ
@given(st.lists(st.integers(min_value=1, max_value=5000), max_size=40))
def test_any_chunking_gives_the_same_tags(sizes: list[int]) -> None:
    data = flv("h264_aac_short_gop")
    reader, tags, pos = FlvReader(), [], 0
    for size in sizes:
        tags += reader.feed(data[pos : pos + size])
        pos += size
        assert reader.buffered <= 11 + 2**16 + 4
    tags += reader.feed(data[pos:])
    reader.close()
    assert tags == read(data)


@FUZZ
@given(st.data())
def test_truncated_streams_raise_truncated_flv(data: st.DataObject) -> None:
    stream = flv("h264_aac_short_gop")
    cut = data.draw(st.integers(min_value=0, max_value=len(stream) - 1))
    whole = {0, 13}  # before the header, right after it and its back pointer
    pos = 13
    while pos < len(stream):
        pos += 11 + int.from_bytes(stream[pos + 1 : pos + 4], "big") + 4
        whole.add(pos)
    if cut in whole and cut:
        read(stream[:cut])
    else:
        assert error_code(stream[:cut]) == "media.truncated_flv"


@FUZZ
@given(st.data())
def test_mutated_messages_raise_only_our_errors(data: st.DataObject) -> None:
    tags = [t for name in ("h264_aac_bframes", "hevc_opus") for t in read(flv(name))[:6]]
    tag = data.draw(st.sampled_from([t for t in tags if t.kind is not TagKind.SCRIPT]))
    payload = bytearray(tag.payload[: data.draw(st.integers(min_value=0, max_value=len(tag.payload)))])
    for _ in range(data.draw(st.integers(min_value=0, max_value=4))):
        if payload:
            payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(MediaError):  # ours; anything else fails the test
        (parse_video if tag.kind is TagKind.VIDEO else parse_audio)(bytes(payload))
