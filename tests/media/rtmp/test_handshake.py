"""The server handshake (server/media/rtmp/handshake.py): S0 S1 S2, echo, split input, versions."""

from __future__ import annotations

import pytest

from server.errors import RtmpError
from server.media.rtmp.handshake import PACKET_SIZE, Handshake, HandshakeState

C1 = bytes([0, 0, 1, 0]) + bytes([9, 0, 124, 2]) + bytes(range(256)) * 5 + bytes(248)  # digest-style version


def test_simple_handshake_echoes_c1() -> None:
    hs = Handshake(random_bytes=lambda n: b"\x07" * n, uptime_ms=5)
    assert hs.receive_data(b"\x03" + C1) == b""
    assert hs.state is HandshakeState.EXPECT_C2 and not hs.done
    out = hs.data_to_send()
    assert len(out) == 1 + 2 * PACKET_SIZE and out[0] == 3
    s1, s2 = out[1 : 1 + PACKET_SIZE], out[1 + PACKET_SIZE :]
    assert s1[:8] == bytes([0, 0, 0, 5, 0, 0, 0, 0])  # zero version: no digest expected from us
    assert s1[8:] == b"\x07" * (PACKET_SIZE - 8)
    assert s2[:4] == C1[:4] and s2[4:8] == bytes([0, 0, 0, 5]) and s2[8:] == C1[8:]
    assert hs.data_to_send() == b""
    rest = hs.receive_data(s1 + b"\x03connect...")
    assert hs.done and rest == b"\x03connect..."
    assert hs.receive_data(b"more") == b"more"


def test_byte_by_byte() -> None:
    hs = Handshake()
    data = b"\x03" + C1 + bytes(PACKET_SIZE) + b"after"
    rest = b"".join(hs.receive_data(data[i : i + 1]) for i in range(len(data)))
    assert rest == b"after" and hs.done
    assert len(hs.data_to_send()) == 1 + 2 * PACKET_SIZE


@pytest.mark.parametrize("version", [0, 6, 8, 0x16, 0x47])  # 0x47 is "G" of "GET /"
def test_a_wrong_version_is_refused_at_once(version: int) -> None:
    hs = Handshake()
    with pytest.raises(RtmpError) as info:
        hs.receive_data(bytes([version]))
    assert info.value.code == "rtmp.bad_handshake" and str(version) in info.value.message
    assert hs.state is HandshakeState.FAILED and hs.data_to_send() == b""
    with pytest.raises(RtmpError):
        hs.receive_data(b"\x03")
