"""The bytes a load-test viewer reads: WebSocket frame headers and a media message's marks.

Sans-I/O helpers for :mod:`clients.loadtest_client`. A server frame is walked by its header
alone (:func:`frame_header`); its payload is skipped, except the first :data:`PREFIX` bytes of
a binary message. Of a media message (``[styp] [prft] [emsg] moof mdat``) only the top-level
box headers of that prefix are read (:func:`fragment_marks`): the ``prft``'s NTP timestamp
and the ``mfhd`` sequence number (the first box inside the ``moof``). Nothing is decoded.
"""

from __future__ import annotations

import struct

#: Bytes of each binary message kept for parsing: room for styp + prft + a small emsg + the
#: moof header and its mfhd.
PREFIX = 256

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def ntp_to_unix(ntp: int) -> float:
    """A 64-bit NTP timestamp (32.32 fixed point since 1900) as Unix seconds."""
    return ntp / 2**32 - NTP_UNIX_OFFSET


def fragment_marks(prefix: bytes | bytearray) -> tuple[int, int]:
    """The ``prft`` NTP timestamp (0 if none) and the ``mfhd`` sequence number (-1 if not
    found) of a media message, from its first bytes: top-level box headers up to the moof."""
    ntp, sequence, offset, end = 0, -1, 0, len(prefix)
    while offset + 8 <= end:
        size = _U32.unpack_from(prefix, offset)[0]
        kind = prefix[offset + 4 : offset + 8]
        if kind == b"moof":
            if offset + 24 <= end and prefix[offset + 12 : offset + 16] == b"mfhd":
                sequence = _U32.unpack_from(prefix, offset + 20)[0]
            break
        if kind == b"prft" and offset + 24 <= end:
            ntp = _U64.unpack_from(prefix, offset + 16)[0]  # after version/flags and track id
        if size < 8:
            break
        offset += size
    return ntp, sequence


def frame_header(data: bytes | bytearray) -> tuple[int, int, int] | None:
    """``(header length, first byte, payload length)`` of a server frame, ``None`` if incomplete."""
    if len(data) < 2:
        return None
    second = data[1]
    length = second & 0x7F
    size = 2
    if length == 126:
        size = 4
        if len(data) < size:
            return None
        length = int.from_bytes(data[2:4], "big")
    elif length == 127:
        size = 10
        if len(data) < size:
            return None
        length = int.from_bytes(data[2:10], "big")
    if second & 0x80:
        size += 4  # a masked server frame breaks the protocol, but its key can be skipped
        if len(data) < size:
            return None
    return size, data[0], length


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payload ≤ 125 bytes). The all-zero mask leaves the bytes as they are."""
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload
