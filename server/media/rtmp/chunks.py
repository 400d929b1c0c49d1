"""The RTMP chunk stream: bytes in any split to :class:`Message` values, and back.

A chunk is a basic header (format and chunk stream id, 1 to 3 bytes), a message header
(11, 7, 3 or 0 bytes for formats 0 to 3), an optional 4-byte extended timestamp and at most
one chunk size of payload. Each chunk stream remembers the last header, so later chunks
leave out what did not change::

    fmt 0   timestamp:u24 length:u24 type:u8 stream_id:u32le   a new message, absolute time
    fmt 1   delta:u24     length:u24 type:u8                    a new message, same stream
    fmt 2   delta:u24                                           a new message, same length/type
    fmt 3   (nothing)                                           a continuation, or a new
                                                                message repeating all of it

A 24-bit field of 0xFFFFFF means the value is in the extended timestamp. A format 3 chunk
carries the extended timestamp again whenever the header it repeats had one (also on the
continuation chunks of one message), as the specification says and ffmpeg, librtmp and
nginx-rtmp do. A new message in format 3 adds the timestamp field of the last format 0, 1
or 2 header (for format 0, its absolute time, as ffmpeg's writer assumes and nginx-rtmp
reads it). Timestamps are 32-bit milliseconds and wrap.

The reader applies Set Chunk Size and Abort itself (they change how the next chunk is
read) and returns every other message. It is bounded by keyword-only limits: the length of
one message (checked from its header, before its body is buffered), the number of chunk
streams with state, and the bytes of all messages being reassembled at once. It holds at
most a partial header (< 18 bytes) besides those messages. Every malformed chunk is a
:class:`~server.errors.RtmpError`; after one, every call raises it again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from server.errors import RtmpError
from server.media.rtmp.messages import ABORT, SET_CHUNK_SIZE, Message, abort_of, chunk_size_of

DEFAULT_CHUNK_SIZE = 128  # both directions, until a Set Chunk Size says otherwise
DEFAULT_MAX_MESSAGE_SIZE = 8 * 2**20  # a keyframe of a 4K stream at a high bitrate
DEFAULT_MAX_CHUNK_STREAMS = 64
DEFAULT_MAX_PENDING = 16 * 2**20
_MAX_HEADER = 3 + 11 + 4
_EXTENDED = 0xFFFFFF
_MESSAGE_HEADER_SIZE = (11, 7, 3, 0)


@dataclass(slots=True)
class _ChunkStream:
    timestamp: int = 0  # of the message being read, or of the last one
    delta: int = 0  # the timestamp field of the last fmt 0/1/2 header (extended if it was)
    extended: bool = False  # that header had an extended timestamp
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    payload: bytearray | None = None  # the message being reassembled


class ChunkReader:
    """Reassemble the messages of a peer's chunk stream; see the module docstring."""

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_chunk_streams: int = DEFAULT_MAX_CHUNK_STREAMS,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        self.max_pending = max_pending
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._streams: dict[int, _ChunkStream] = {}
        self._header = b""  # a chunk header split across calls
        self._current: _ChunkStream | None = None  # whose chunk payload is being read
        self._left = 0  # payload bytes of the current chunk still to come
        self._pending = 0  # declared bytes of the messages being reassembled
        self._position = 0  # stream offset of the next byte, for error messages
        self._error: RtmpError | None = None

    @property
    def pending(self) -> int:
        """Bytes declared by the messages being reassembled (at most ``max_pending``)."""
        return self._pending

    def feed(self, data: bytes) -> list[Message]:
        """Consume ``data``; return the messages it completed, in order."""
        if self._error is not None:
            raise RtmpError(self._error.code, f"the chunk stream already failed: {self._error.message}")
        messages: list[Message] = []
        try:
            self._consume(memoryview(data), messages)
        except RtmpError as exc:
            self._error = exc
            raise
        return messages

    def _consume(self, view: memoryview, messages: list[Message]) -> None:
        pos, end = 0, len(view)
        while True:
            if self._current is None:
                if self._header:
                    head = self._header + bytes(view[pos : pos + _MAX_HEADER])
                    used = self._read_header(head, 0, len(head), messages)
                    if used is None:
                        self._header = head
                        self._position += end - pos
                        return
                    pos += used - len(self._header)
                    self._position += used - len(self._header)
                    self._header = b""
                else:
                    used = self._read_header(view, pos, end, messages)
                    if used is None:
                        self._header = bytes(view[pos:end])
                        self._position += end - pos
                        return
                    self._position += used - pos
                    pos = used
                if self._current is None:
                    continue  # a message of length 0, complete already
            stream = self._current
            take = min(self._left, end - pos)
            if take:
                assert stream.payload is not None
                stream.payload += view[pos : pos + take]
                pos += take
                self._position += take
                self._left -= take
            if self._left:
                return
            self._current = None
            self._complete_chunk(stream, messages)

    def _read_header(
        self, buf: bytes | memoryview, pos: int, end: int, messages: list[Message]
    ) -> int | None:
        """Parse the chunk header at ``pos``; return its end, or ``None`` if it is incomplete."""
        if pos >= end:
            return None
        first = buf[pos]
        fmt, csid, at = first >> 6, first & 0x3F, pos + 1
        if csid == 0:
            if end - at < 1:
                return None
            csid, at = 64 + buf[at], at + 1
        elif csid == 1:
            if end - at < 2:
                return None
            csid, at = 64 + buf[at] + 256 * buf[at + 1], at + 2
        size = _MESSAGE_HEADER_SIZE[fmt]
        if end - at < size:
            return None
        stream = self._streams.get(csid)
        if stream is None:
            if fmt != 0:
                raise RtmpError(
                    "rtmp.bad_chunk",
                    f"chunk stream {csid} starts with a format {fmt} header at byte {self._position}",
                )
            if len(self._streams) >= self.max_chunk_streams:
                raise RtmpError("rtmp.too_many_chunk_streams", f"over {self.max_chunk_streams} chunk streams")
        new_message = stream is None or stream.payload is None
        if fmt != 3 and not new_message:
            raise RtmpError(
                "rtmp.bad_chunk",
                f"a format {fmt} header on chunk stream {csid} in the middle of a message "
                f"at byte {self._position}",
            )
        ts_field = length = type_id = stream_id = 0
        if fmt < 3:
            ts_field = int.from_bytes(buf[at : at + 3], "big")
            if fmt < 2:
                length = int.from_bytes(buf[at + 3 : at + 6], "big")
                type_id = buf[at + 6]
            if fmt == 0:
                stream_id = int.from_bytes(buf[at + 7 : at + 11], "little")
        at += size
        extended = ts_field == _EXTENDED if fmt < 3 else stream is not None and stream.extended
        if extended:
            if end - at < 4:
                return None
            value = int.from_bytes(buf[at : at + 4], "big")
            at += 4
            if fmt < 3 or new_message:
                ts_field = value
        # The header is whole: from here on, state changes.
        if stream is None:
            stream = self._streams[csid] = _ChunkStream()
        if fmt < 3:
            stream.delta, stream.extended = ts_field, extended
        elif new_message and not extended:
            ts_field = stream.delta  # (with an extended timestamp, the field read above)
        if fmt < 2:
            stream.length, stream.type_id = length, type_id
        if fmt == 0:
            stream.stream_id = stream_id
            stream.timestamp = ts_field
        elif new_message:
            stream.timestamp = (stream.timestamp + ts_field) & 0xFFFFFFFF
        if new_message:
            if stream.length > self.max_message_size:
                raise RtmpError(
                    "rtmp.message_too_large",
                    f"a {stream.length}-byte message on chunk stream {csid}, over {self.max_message_size}",
                )
            if self._pending + stream.length > self.max_pending:
                raise RtmpError(
                    "rtmp.buffer_full", f"over {self.max_pending} bytes of messages being reassembled"
                )
            self._pending += stream.length
            stream.payload = bytearray()
        assert stream.payload is not None
        self._current = stream
        self._left = min(self.chunk_size, stream.length - len(stream.payload))
        if self._left == 0:  # a message of length 0
            self._current = None
            self._complete_chunk(stream, messages)
        return at

    def _complete_chunk(self, stream: _ChunkStream, messages: list[Message]) -> None:
        assert stream.payload is not None
        if len(stream.payload) < stream.length:
            return
        payload = bytes(stream.payload)
        stream.payload = None
        self._pending -= stream.length
        message = Message(stream.type_id, stream.stream_id, stream.timestamp, payload)
        if message.type_id == SET_CHUNK_SIZE:
            self.chunk_size = chunk_size_of(message)
        elif message.type_id == ABORT:
            self._abort(abort_of(message))
        else:
            messages.append(message)

    def _abort(self, csid: int) -> None:
        stream = self._streams.get(csid)
        if stream is not None and stream.payload is not None:
            self._pending -= stream.length
            stream.payload = None


class ChunkWriter:
    """Split messages into chunks of :attr:`chunk_size` (128 until :meth:`set_chunk_size`).

    Every message starts with a format 0 header (we send few messages: saving bytes on them
    is not worth a second code path) and continues in format 3 chunks, which repeat the
    extended timestamp when there is one.
    """

    def __init__(self) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE

    def set_chunk_size(self, size: int) -> None:
        """Use ``size`` from now on (send the Set Chunk Size message before anything else)."""
        if not 1 <= size <= 2**24:
            raise ValueError(f"chunk size {size} outside 1 .. 2^24")
        self.chunk_size = size

    def write(self, message: Message, csid: int) -> bytes:
        if not 2 <= csid <= 65599:
            raise ValueError(f"chunk stream id {csid} outside 2 .. 65599")
        if len(message.payload) >= 2**24:
            raise ValueError("an RTMP message is limited to 2^24 - 1 bytes")
        timestamp = message.timestamp & 0xFFFFFFFF
        extended = timestamp >= _EXTENDED
        field = _EXTENDED if extended else timestamp
        ext = struct.pack(">I", timestamp) if extended else b""
        out = bytearray(_basic_header(0, csid))
        out += field.to_bytes(3, "big") + len(message.payload).to_bytes(3, "big")
        out.append(message.type_id)
        out += message.stream_id.to_bytes(4, "little") + ext
        payload, size = message.payload, self.chunk_size
        out += payload[:size]
        continuation = _basic_header(3, csid) + ext
        for start in range(size, len(payload), size):
            out += continuation
            out += payload[start : start + size]
        return bytes(out)


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes(((fmt << 6) | csid,))
    if csid < 320:
        return bytes((fmt << 6, csid - 64))
    return bytes(((fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))
