"""RTMP messages: the reassembled unit of the chunk stream, its type ids, and the protocol
control and user control messages (their payloads, both ways).

A :class:`Message` is what :mod:`server.media.rtmp.chunks` reads and writes; what a
command or a media message means is :mod:`server.media.rtmp.session`'s business.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from server.errors import RtmpError

SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
COMMAND_AMF3 = 17
DATA_AMF0 = 18
COMMAND_AMF0 = 20
AGGREGATE = 22

#: The chunk stream for protocol control messages (fixed by the specification) and the
#: ones we send commands and stream statuses on (any id from 3 works; these are customary).
CONTROL_CHUNK_STREAM = 2
COMMAND_CHUNK_STREAM = 3
STATUS_CHUNK_STREAM = 5

#: A chunk size may be 1 to 2^24 bytes; the top bit of the field must be zero.
MAX_CHUNK_SIZE = 2**24

_U32 = struct.Struct(">I")
_PEER_BANDWIDTH = struct.Struct(">IB")
_USER_CONTROL = struct.Struct(">HI")


class UserControl(enum.IntEnum):
    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7


class PeerBandwidthLimit(enum.IntEnum):
    HARD = 0
    SOFT = 1
    DYNAMIC = 2


@dataclass(frozen=True, slots=True)
class Message:
    """One RTMP message: its type id, message stream id, 32-bit timestamp (ms) and payload."""

    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes


def _u32(message: Message, what: str) -> int:
    if len(message.payload) < 4:
        raise RtmpError("rtmp.bad_message", f"{what} of {len(message.payload)} bytes, 4 expected")
    value: int = _U32.unpack_from(message.payload)[0]
    return value


def chunk_size_of(message: Message) -> int:
    """The size a Set Chunk Size message asks for, refused outside 1 .. 2^24."""
    size = _u32(message, "a Set Chunk Size message")
    if size & 0x80000000:
        raise RtmpError("rtmp.bad_chunk_size", f"Set Chunk Size {size} has its top bit set")
    if not 1 <= size <= MAX_CHUNK_SIZE:
        raise RtmpError("rtmp.bad_chunk_size", f"Set Chunk Size {size} is outside 1 .. {MAX_CHUNK_SIZE}")
    return size


def abort_of(message: Message) -> int:
    """The chunk stream id an Abort message names."""
    return _u32(message, "an Abort message")


def window_of(message: Message) -> int:
    """The window of a Window Acknowledgement Size message (or of a Set Peer Bandwidth one)."""
    return _u32(message, "a window size")


def user_control_of(message: Message) -> tuple[int, int]:
    """The event type and its first 4-byte field (a stream id or a ping timestamp)."""
    if len(message.payload) < 6:
        raise RtmpError("rtmp.bad_message", f"a User Control message of {len(message.payload)} bytes")
    event, value = _USER_CONTROL.unpack_from(message.payload)
    return event, value


def set_chunk_size(size: int) -> Message:
    if not 1 <= size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size {size} outside 1 .. {MAX_CHUNK_SIZE}")
    return Message(SET_CHUNK_SIZE, 0, 0, _U32.pack(size))


def acknowledgement(sequence_number: int) -> Message:
    return Message(ACKNOWLEDGEMENT, 0, 0, _U32.pack(sequence_number & 0xFFFFFFFF))


def window_ack_size(window: int) -> Message:
    return Message(WINDOW_ACK_SIZE, 0, 0, _U32.pack(window))


def set_peer_bandwidth(window: int, limit: PeerBandwidthLimit = PeerBandwidthLimit.DYNAMIC) -> Message:
    return Message(SET_PEER_BANDWIDTH, 0, 0, _PEER_BANDWIDTH.pack(window, limit))


def user_control(event: UserControl, value: int) -> Message:
    return Message(USER_CONTROL, 0, 0, _USER_CONTROL.pack(event, value & 0xFFFFFFFF))
