"""Test FLV streams made by ffmpeg (legacy H.264/AAC, and Enhanced RTMP HEVC/Opus), cached
outside the repository next to the fMP4 test media, and what PyAV reads from them."""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass

import av

from tests.media.media_files import X264, X265, encoded, ffmpeg

_AV = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=44100"]

#: name -> ffmpeg arguments before the output
STREAMS: dict[str, list[str]] = {
    "h264_aac_bframes": [*_AV, "-t", "3", *X264, "-bf", "2", "-g", "25", "-c:a", "aac"],
    "h264_only": [*_AV[:4], "-t", "3", *X264, "-bf", "0", "-g", "25"],
    "h264_aac_short_gop": [
        *_AV,
        "-t",
        "2",
        *X264,
        "-bf",
        "0",
        "-g",
        "12",
        "-keyint_min",
        "12",
        "-c:a",
        "aac",
    ],
    "h264_aac_small": [
        *_AV,
        "-t",
        "1",
        "-vf",
        "scale=160:120",
        *X264,
        "-bf",
        "0",
        "-g",
        "25",
        "-c:a",
        "aac",
    ],
    "aac_only": [*_AV[4:], "-t", "2", "-c:a", "aac"],
    # An odd size: the SPS crops the coded 336x208 macroblocks to 330x200.
    "h264_odd_size": [*_AV[:4], "-t", "1", "-vf", "scale=330:200", *X264, "-bf", "0", "-g", "25"],
    "av1_only": [
        *_AV[:4],
        "-t",
        "1",
        "-c:v",
        "libsvtav1",
        "-preset",
        "12",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
    ],
    "hevc_opus": [*_AV, "-t", "2", *X265, "-g", "25", "-bf", "2", "-c:a", "libopus"],
}


#: The encoder each stream needs beyond libx264 and AAC (a test fails without it, naming it).
ENCODERS = {"hevc_opus": "libx265", "av1_only": "libsvtav1"}


@functools.cache
def encoders() -> str:
    return subprocess.run(
        [ffmpeg(), "-hide_banner", "-encoders"], capture_output=True, check=True
    ).stdout.decode()


def needs(name: str) -> None:
    """Fail the calling test, saying what is missing, if this ffmpeg lacks the encoder of
    stream ``name`` (never a silent skip: the test command installs an ffmpeg that has it)."""
    import pytest

    encoder = ENCODERS.get(name)
    if encoder is not None and f" {encoder} " not in encoders():
        pytest.fail(f"{ffmpeg()} has no {encoder}: the tests need the ffmpeg of imageio-ffmpeg (pip)")


@functools.cache
def flv(name: str) -> bytes:
    needs(name)
    return encoded(name, STREAMS[name], "flv").read_bytes()


@dataclass(frozen=True, slots=True)
class Frame:
    dts: float  # seconds
    pts: float
    keyframe: bool


def frames(data: bytes, container_format: str) -> dict[str, list[Frame]]:
    """PyAV's packets of ``data`` by stream type, times in seconds."""
    import io

    found: dict[str, list[Frame]] = {}
    with av.open(io.BytesIO(data), mode="r", format=container_format) as container:
        for packet in container.demux():
            if packet.size == 0 or packet.dts is None or packet.time_base is None:
                continue
            base = float(packet.time_base)
            pts = packet.pts if packet.pts is not None else packet.dts
            found.setdefault(packet.stream.type, []).append(
                Frame(packet.dts * base, pts * base, packet.is_keyframe)
            )
    return found
