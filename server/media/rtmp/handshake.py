"""The server side of the RTMP handshake: C0 C1 in, S0 S1 S2 out, C2 in.

Each of C1, C2, S1 and S2 is 1,536 bytes: ``time:u32 zero:u32 random:1528``. C0 and S0 are
one version byte, 3 (plain RTMP; 6 and 8 are RTMPE, which we do not speak).

We answer with the simple handshake whatever the client sent: S1 carries zeros where a
digest-handshake server puts its version, which tells a client using the Flash Player 9
"digest" handshake (ffmpeg, librtmp, OBS) that this server does not do digests, and S2
echoes C1 byte for byte. Clients that publish accept that (nginx-rtmp and most servers
answer the same way); only players of DRM'd streams check the server's digest. C2 is not
checked either: clients fill it inconsistently and nothing depends on it.

S0 S1 S2 are sent together as soon as C0 C1 are in, so a client never waits on us. Bytes
after C2 (a client may send its ``connect`` in the same write) are handed back to the
caller as the start of the chunk stream. The time a client may take is the adapter's to
bound (:attr:`Handshake.done` tells it when the deadline no longer applies).
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Callable

from server.errors import RtmpError

VERSION = 3
PACKET_SIZE = 1536
_U32x2 = struct.Struct(">II")


class HandshakeState(enum.Enum):
    EXPECT_C0C1 = "expect_c0c1"  # nothing received yet (or part of C0 C1)
    EXPECT_C2 = "expect_c2"  # S0 S1 S2 are queued; waiting for the client's echo of S1
    DONE = "done"  # the chunk stream starts
    FAILED = "failed"  # a wrong version; the connection must be closed


class Handshake:
    """The server's handshake: :meth:`receive_data` then :meth:`data_to_send`.

    ``random_bytes`` makes S1's random part (tests pass a deterministic one); ``uptime_ms``
    is S1's time field (our epoch, any value).
    """

    def __init__(self, *, random_bytes: Callable[[int], bytes] = os.urandom, uptime_ms: int = 0) -> None:
        self._random_bytes = random_bytes
        self._uptime_ms = uptime_ms & 0xFFFFFFFF
        self._state = HandshakeState.EXPECT_C0C1
        self._buffer = bytearray()
        self._out = bytearray()

    @property
    def state(self) -> HandshakeState:
        return self._state

    @property
    def done(self) -> bool:
        return self._state is HandshakeState.DONE

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes) -> bytes:
        """Consume handshake bytes; return what follows C2 (empty until the handshake is done)."""
        if self._state is HandshakeState.FAILED:
            raise RtmpError("rtmp.bad_handshake", "the handshake already failed")
        if self._state is HandshakeState.DONE:
            return data
        self._buffer += data
        if self._state is HandshakeState.EXPECT_C0C1:
            if not self._buffer:
                return b""
            version = self._buffer[0]
            if version != VERSION:
                self._state = HandshakeState.FAILED
                kind = "RTMPE (encrypted RTMP)" if version in (6, 8) else "an unknown RTMP version"
                raise RtmpError(
                    "rtmp.bad_handshake", f"C0 asks for version {version}, {kind}; only version 3 is served"
                )
            if len(self._buffer) < 1 + PACKET_SIZE:
                return b""
            c1 = bytes(self._buffer[1 : 1 + PACKET_SIZE])
            del self._buffer[: 1 + PACKET_SIZE]
            client_time = _U32x2.unpack_from(c1)[0]
            s1 = _U32x2.pack(self._uptime_ms, 0) + self._random(PACKET_SIZE - 8)
            # S2 is C1's echo, with C1's time in the first field and ours in the second.
            s2 = _U32x2.pack(client_time, self._uptime_ms) + c1[8:]
            self._out += bytes((VERSION,)) + s1 + s2
            self._state = HandshakeState.EXPECT_C2
        if len(self._buffer) < PACKET_SIZE:
            return b""
        rest = bytes(self._buffer[PACKET_SIZE:])
        self._buffer.clear()
        self._state = HandshakeState.DONE
        return rest

    def _random(self, size: int) -> bytes:
        data = self._random_bytes(size)
        if len(data) != size:
            raise ValueError("random_bytes returned the wrong number of bytes")
        return data
