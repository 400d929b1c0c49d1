"""Test MPEG-TS streams made by ffmpeg (what ``ffmpeg -f mpegts srt://…`` sends), cached outside
the repository next to the other test media, and helpers to edit their packets."""

from __future__ import annotations

import functools
import random
from pathlib import Path

from tests.media.flv_files import encoders
from tests.media.media_files import X264, X265, encoded

PACKET = 188
_AV = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000"]

#: name -> ffmpeg arguments before the output (2 s each, a keyframe every second)
STREAMS: dict[str, list[str]] = {
    "h264_aac_bframes": [*_AV, "-t", "2", *X264, "-bf", "2", "-g", "25", "-c:a", "aac"],
    "h264_only": [*_AV[:4], "-t", "2", *X264, "-bf", "0", "-g", "25"],
    "aac_only": [*_AV[4:], "-t", "2", "-c:a", "aac"],
    "hevc_aac": [*_AV, "-t", "2", *X265, "-g", "25", "-bf", "2", "-c:a", "aac"],
    # An MPEG audio stream (type 0x03) beside the AAC one: listed in the PMT, not relayed.
    "h264_aac_mp2": [
        *_AV,
        "-t",
        "1",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "1:a",
        *X264,
        "-g",
        "25",
        "-c:a:0",
        "aac",
        "-c:a:1",
        "mp2",
    ],
}
ENCODERS = {"hevc_aac": "libx265"}


@functools.cache
def ts_path(name: str) -> Path:
    """The file of stream ``name``, encoded on first use."""
    encoder = ENCODERS.get(name)
    if encoder is not None and f" {encoder} " not in encoders():
        import pytest

        pytest.fail(f"this ffmpeg has no {encoder}: the tests need the ffmpeg of imageio-ffmpeg (pip)")
    return encoded(f"ts_{name}", STREAMS[name], "mpegts")


@functools.cache
def ts(name: str) -> bytes:
    return ts_path(name).read_bytes()


def chunked(data: bytes, seed: int, largest: int = 4000) -> list[bytes]:
    """``data`` cut at random places (sizes 1 to ``largest``), the same for a seed."""
    rng, out, pos = random.Random(seed), [], 0
    while pos < len(data):
        size = rng.randint(1, largest)
        out.append(data[pos : pos + size])
        pos += size
    return out


def packets(data: bytes) -> list[bytes]:
    return [data[at : at + PACKET] for at in range(0, len(data), PACKET)]


def pid(packet: bytes) -> int:
    return (packet[1] & 0x1F) << 8 | packet[2]


def payload_at(packet: bytes) -> int:
    return 5 + packet[4] if packet[3] & 0x20 else 4


def shift_times(data: bytes, offset: int, pids: set[int]) -> bytes:
    """``data`` with every PTS and DTS of these PIDs' PES headers moved by ``offset`` ticks
    (modulo 2**33, as a 33-bit clock wraps)."""
    out = []
    for packet in packets(data):
        at = payload_at(packet)
        if pid(packet) in pids and packet[1] & 0x40 and packet[at : at + 3] == b"\0\0\1":
            edited = bytearray(packet)
            flags = packet[at + 7] >> 6
            for field in range(2 if flags == 3 else 1):
                start = at + 9 + 5 * field
                b = packet[start : start + 5]
                value = (b[0] >> 1 & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
                value = (value + offset) % 2**33
                edited[start : start + 5] = bytes(
                    [
                        b[0] & 0xF0 | (value >> 30 & 7) << 1 | 1,
                        value >> 22 & 0xFF,
                        (value >> 15 & 0x7F) << 1 | 1,
                        value >> 7 & 0xFF,
                        (value & 0x7F) << 1 | 1,
                    ]
                )
            packet = bytes(edited)
        out.append(packet)
    return b"".join(out)
