"""The chunk stream (server/media/rtmp/chunks.py) on hand-built chunks: every header format,
extended timestamps (also on format 3), interleaving, Set Chunk Size, Abort and the limits;
any split of the input; mutations raise only our errors. And the writer, back through it."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import RtmpError
from server.media.rtmp import messages as m
from server.media.rtmp.chunks import ChunkReader, ChunkWriter
from server.media.rtmp.messages import Message
from tests.media.rtmp.client import C0C1, C2, publisher_stream

FUZZ = settings(max_examples=150, deadline=None, database=None)
STREAM = publisher_stream()[len(C0C1) + len(C2) :]
BIG_CHUNKS = publisher_stream(chunk_size=4096)[len(C0C1) + len(C2) :]


def basic(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1, (csid - 64) % 256, (csid - 64) // 256])


def u24(value: int) -> bytes:
    return value.to_bytes(3, "big")


def fmt0(csid: int, ts: int, length: int, type_id: int, msid: int = 1, ext: int | None = None) -> bytes:
    head = basic(0, csid) + u24(ts) + u24(length) + bytes([type_id]) + struct.pack("<I", msid)
    return head + (struct.pack(">I", ext) if ext is not None else b"")


def fmt1(csid: int, delta: int, length: int, type_id: int, ext: int | None = None) -> bytes:
    head = basic(1, csid) + u24(delta) + u24(length) + bytes([type_id])
    return head + (struct.pack(">I", ext) if ext is not None else b"")


def fmt2(csid: int, delta: int, ext: int | None = None) -> bytes:
    return basic(2, csid) + u24(delta) + (struct.pack(">I", ext) if ext is not None else b"")


def fmt3(csid: int, ext: int | None = None) -> bytes:
    return basic(3, csid) + (struct.pack(">I", ext) if ext is not None else b"")


def control(type_id: int, value: int) -> bytes:
    return fmt0(2, 0, 4, type_id, msid=0) + struct.pack(">I", value)


def read(data: bytes, **limits: int) -> list[Message]:
    return ChunkReader(**limits).feed(data)


def code_of(data: bytes, **limits: int) -> str:
    reader = ChunkReader(**limits)
    with pytest.raises(RtmpError) as info:
        reader.feed(data)
    with pytest.raises(RtmpError) as again:
        reader.feed(b"\x03")
    assert again.value.code == info.value.code
    return info.value.code


def test_one_chunk_message() -> None:
    assert read(fmt0(3, 7, 5, 20, msid=0) + b"hello") == [Message(20, 0, 7, b"hello")]


def test_a_message_over_several_chunks() -> None:
    body = bytes(range(256)) + bytes(44)
    data = fmt0(6, 0, 300, 9) + body[:128] + fmt3(6) + body[128:256] + fmt3(6) + body[256:]
    assert read(data) == [Message(9, 1, 0, body)]


def test_formats_1_2_3_carry_deltas() -> None:
    data = (
        fmt0(4, 1000, 2, 8) + b"a0"
        + fmt1(4, 40, 3, 8) + b"a1x"
        + fmt2(4, 20) + b"a2y"
        + fmt3(4) + b"a3z"  # a new message: the same length, type and delta
    )  # fmt: skip
    assert [(x.timestamp, x.payload) for x in read(data)] == [
        (1000, b"a0"), (1040, b"a1x"), (1060, b"a2y"), (1080, b"a3z")
    ]  # fmt: skip


def test_format_3_after_format_0_adds_its_timestamp() -> None:
    # As ffmpeg writes it (and nginx-rtmp reads it): the last header's timestamp field.
    data = fmt0(4, 40, 1, 8) + b"a" + fmt3(4) + b"b" + fmt3(4) + b"c"
    assert [x.timestamp for x in read(data)] == [40, 80, 120]


def test_extended_timestamps_on_every_format_and_on_continuations() -> None:
    big = 0x01000000
    body = bytes(200)
    data = (
        fmt0(6, 0xFFFFFF, 200, 9, ext=big) + body[:128] + fmt3(6, ext=big) + body[128:]
        + fmt3(6, ext=big) + body[:128] + fmt3(6, ext=big) + body[128:]  # a new message: + big
        + fmt1(6, 0xFFFFFF, 1, 9, ext=0x01000001) + b"x"
        + fmt2(6, 10) + b"y"  # back to a 24-bit delta: no more extended fields
        + fmt3(6) + b"z"
    )  # fmt: skip
    assert [(x.timestamp, len(x.payload)) for x in read(data)] == [
        (big, 200), (2 * big, 200), (3 * big + 1, 1), (3 * big + 11, 1), (3 * big + 21, 1)
    ]  # fmt: skip


def test_timestamps_wrap_at_32_bits() -> None:
    data = fmt0(4, 0xFFFFFF, 1, 8, ext=0xFFFFFFF0) + b"a" + fmt2(4, 0x20) + b"b"
    assert [x.timestamp for x in read(data)] == [0xFFFFFFF0, 0x10]


def test_interleaved_chunk_streams() -> None:
    video, audio = bytes([1]) * 200, bytes([2]) * 150
    data = (
        fmt0(6, 0, 200, 9) + video[:128]
        + fmt0(4, 0, 150, 8) + audio[:128]
        + fmt3(6) + video[128:]
        + fmt0(3, 0, 2, 20, msid=0) + b"hi"
        + fmt3(4) + audio[128:]
    )  # fmt: skip
    assert [(x.type_id, x.payload) for x in read(data)] == [(9, video), (20, b"hi"), (8, audio)]


@pytest.mark.parametrize("csid", [3, 63, 64, 319, 320, 65599])
def test_long_basic_headers(csid: int) -> None:
    assert read(fmt0(csid, 1, 1, 8) + b"a" + fmt3(csid) + b"b") == [
        Message(8, 1, 1, b"a"),
        Message(8, 1, 2, b"b"),
    ]


def test_chunk_size_changes_mid_stream() -> None:
    body = bytes(range(250))
    data = fmt0(6, 0, 250, 9) + body[:128] + fmt3(6) + body[128:] + control(m.SET_CHUNK_SIZE, 200)
    data += fmt0(6, 0, 250, 9) + body[:200] + fmt3(6) + body[200:]
    reader = ChunkReader()
    assert [x.payload for x in reader.feed(data)] == [body, body]
    assert reader.chunk_size == 200
    assert read(control(m.SET_CHUNK_SIZE, 2**24) + fmt0(6, 0, 250, 9) + body) == [Message(9, 1, 0, body)]


@pytest.mark.parametrize("size", [0, 2**24 + 1, 2**31, 2**32 - 1])
def test_bad_chunk_sizes(size: int) -> None:
    assert code_of(control(m.SET_CHUNK_SIZE, size)) == "rtmp.bad_chunk_size"


def test_abort_drops_the_partial_message() -> None:
    reader = ChunkReader()
    assert reader.feed(fmt0(6, 0, 300, 9) + bytes(128)) == []
    assert reader.pending == 300
    assert reader.feed(control(m.ABORT, 6) + control(m.ABORT, 99)) == []
    assert reader.pending == 0
    # The next message on that chunk stream may even use format 3 (the header is kept).
    assert reader.feed(fmt3(6) + bytes(128) + fmt3(6) + bytes(128) + fmt3(6) + bytes(44)) == [
        Message(9, 1, 0, bytes(300))
    ]


def test_empty_messages() -> None:
    assert read(fmt0(4, 5, 0, 8) + fmt3(4) + fmt0(4, 6, 1, 8) + b"x") == [
        Message(8, 1, 5, b""), Message(8, 1, 10, b""), Message(8, 1, 6, b"x")
    ]  # fmt: skip


def test_malformed_chunks() -> None:
    assert code_of(fmt1(5, 0, 1, 8) + b"a") == "rtmp.bad_chunk"  # no format 0 first
    assert code_of(fmt3(5)) == "rtmp.bad_chunk"
    assert code_of(fmt0(6, 0, 200, 9) + bytes(128) + fmt0(6, 0, 1, 9)) == "rtmp.bad_chunk"  # mid-message
    assert code_of(fmt0(2, 0, 2, m.SET_CHUNK_SIZE, msid=0) + b"\0\1") == "rtmp.bad_message"


def test_a_message_over_the_limit_is_refused_from_its_header() -> None:
    assert code_of(fmt0(6, 0, 0xFFFFFF, 9)) == "rtmp.message_too_large"  # no body needed
    assert code_of(fmt0(6, 0, 1001, 9), max_message_size=1000) == "rtmp.message_too_large"
    assert read(fmt0(6, 0, 1000, 9) + bytes(128) * 7 + fmt3(6) + bytes(104), max_message_size=1000)


def test_pending_bytes_and_chunk_streams_are_bounded() -> None:
    many = b"".join(fmt0(3 + i, 0, 1, 8) + b"x" for i in range(10))
    assert len(read(many, max_chunk_streams=10)) == 10
    assert code_of(many + fmt0(20, 0, 1, 8), max_chunk_streams=10) == "rtmp.too_many_chunk_streams"
    parts = fmt0(4, 0, 600, 8) + bytes(128) + fmt0(6, 0, 600, 9)
    assert code_of(parts, max_pending=1000) == "rtmp.buffer_full"


@pytest.mark.parametrize("size", [0, 1, 127, 128, 129, 1000, 70_000])
@pytest.mark.parametrize("timestamp", [0, 0xFFFFFE, 0xFFFFFF, 2**32 - 1])
def test_writer_round_trips(size: int, timestamp: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    writer = ChunkWriter()
    data = b""
    for chunk_size in (128, 77, 4096):
        writer.set_chunk_size(chunk_size)
        data += writer.write(m.set_chunk_size(chunk_size), 2)
        data += writer.write(Message(9, 1, timestamp, payload), 400)
    assert read(data) == [Message(9, 1, timestamp, payload)] * 3


def test_writer_bytes() -> None:
    raw = ChunkWriter().write(Message(20, 0, 0x01000000, bytes(130)), 3)
    assert raw == fmt0(3, 0xFFFFFF, 130, 20, msid=0, ext=0x01000000) + bytes(128) + fmt3(
        3, ext=0x01000000
    ) + bytes(2)


@FUZZ
@given(data=st.data(), big=st.booleans())
def test_any_split_gives_the_same_messages(data: st.DataObject, big: bool) -> None:
    stream = BIG_CHUNKS if big else STREAM
    whole = read(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    reader = ChunkReader()
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += reader.feed(stream[start:end])
    assert got == whole and len(whole) >= 19


def test_byte_by_byte() -> None:
    reader = ChunkReader()
    assert [x for i in range(len(STREAM)) for x in reader.feed(STREAM[i : i + 1])] == read(STREAM)


@FUZZ
@given(at=st.lists(st.integers(0), min_size=1, max_size=4), byte=st.integers(0, 255), big=st.booleans())
def test_mutations_raise_only_our_errors(at: list[int], byte: int, big: bool) -> None:
    stream = bytearray(BIG_CHUNKS if big else STREAM)
    for position in at:
        stream[position % len(stream)] = byte
    with contextlib.suppress(RtmpError):  # anything else escapes and fails
        read(bytes(stream))


def test_headers_split_anywhere() -> None:
    # Long basic headers and extended timestamps, one byte at a time.
    data = (
        fmt0(400, 0xFFFFFF, 200, 9, ext=2**24) + bytes(128) + fmt3(400, ext=2**24) + bytes(72)
        + fmt0(100, 0xFFFFFF, 1, 8, ext=7) + b"a" + fmt3(100, ext=7) + b"b"
    )  # fmt: skip
    reader = ChunkReader()
    got = [x for i in range(len(data)) for x in reader.feed(data[i : i + 1])]
    assert got == read(data) and [x.timestamp for x in got] == [2**24, 7, 14]
