"""Test media for the fMP4 tests: real streams made by ffmpeg, and a box-tree editor.

:func:`stream` encodes each stream of :data:`STREAMS` once (the ffmpeg of the
imageio-ffmpeg wheel: libx264, AAC, Opus) into a cache directory outside the repository
(``$FORUMCAST_TEST_MEDIA`` or ``~/.cache/forumcast-test-media``), named by a hash of the
ffmpeg binary and its arguments, so a changed recipe makes a new file and the media is
never committed. :func:`packets` reads a stream back with PyAV, an independent demuxer
that the parser's results are checked against.

The malformed cases are real streams edited with :func:`parse_boxes` / :func:`serialize`:
a tree of boxes whose sizes are recomputed when written back.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import imageio_ffmpeg  # type: ignore[import-untyped]
from hypothesis.configuration import set_hypothesis_home_dir

_VIDEO_IN = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"]
_AUDIO_IN = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
#: ffmpeg encoder arguments shared by the test streams (here, tests/media/flv_files.py, ts_files.py).
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-sc_threshold", "0"]
X265 = ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"]
_AAC = ["-c:a", "aac", "-b:a", "64k"]
_OPUS = ["-c:a", "libopus", "-b:a", "48k"]
_FRAGMENTED = ["-movflags", "frag_keyframe+empty_moov+default_base_moof"]


_PRFT = ["-write_prft", "wallclock"]


def _gop(frames: int) -> list[str]:
    return ["-g", str(frames), "-keyint_min", str(frames)]


def _cut(milliseconds: int) -> list[str]:
    return ["-frag_duration", str(milliseconds * 1000)]


_AV = [*_VIDEO_IN, *_AUDIO_IN]

#: name -> ffmpeg arguments between the inputs and the output file.
STREAMS: dict[str, list[str]] = {
    # H.264 + AAC, no B-frames, a keyframe (and so a fragment) every 2 s.
    "h264_aac": [*_AV, "-t", "6", *X264, "-bf", "0", *_gop(50), *_AAC, *_FRAGMENTED],
    # The same with B-frames: composition offsets in every video trun.
    "h264_aac_bframes": [*_AV, "-t", "6", *X264, "-bf", "2", *_gop(50), *_AAC, *_FRAGMENTED],
    # 0.5 s GOPs (12 frames) cut every 0.25 s: every other fragment starts without a keyframe.
    "h264_aac_short_gop": [*_AV, "-t", "3", *X264, "-bf", "0", *_gop(12), *_AAC, *_FRAGMENTED, *_cut(250)],
    "aac_only": [*_AUDIO_IN, "-t", "3", *_AAC, *_FRAGMENTED, *_cut(500)],
    "opus_only": [*_AUDIO_IN, "-t", "3", *_OPUS, *_FRAGMENTED, *_cut(500)],
    "h264_only": [*_VIDEO_IN, "-t", "3", *X264, "-bf", "0", *_gop(25), *_FRAGMENTED],
    # Producer reference times (prft, wall clock) before each moof.
    "h264_aac_prft": [*_AV, "-t", "3", *X264, "-bf", "0", *_gop(25), *_AAC, *_FRAGMENTED, *_PRFT],
}


def ffmpeg() -> str:
    exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    return exe


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "forumcast-test-media"
    path = Path(os.environ.get("FORUMCAST_TEST_MEDIA", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


# Hypothesis writes a cache (even without an example database) into ./.hypothesis, which
# the repository's norecursedirs makes pytest warn about, and filterwarnings turns into an
# error for the next run: keep it with the media instead.
set_hypothesis_home_dir(cache_dir() / "hypothesis")


def encoded(name: str, args: Sequence[str], fmt: str) -> Path:
    """ffmpeg ``args`` written as ``fmt`` into the cache, once per (ffmpeg, args)."""
    key = hashlib.sha256("\0".join([Path(ffmpeg()).name, *args]).encode()).hexdigest()[:12]
    path = cache_dir() / f"{name}-{key}.{fmt}"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.part")
        command = [ffmpeg(), "-hide_banner", "-v", "error", "-y", *args, "-f", fmt, str(partial)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        partial.replace(path)  # atomic: a concurrent run never sees half a file
    return path


@functools.cache
def stream_path(name: str) -> Path:
    """The file of stream ``name``, encoded on first use."""
    return encoded(name, STREAMS[name], "mp4")


@functools.cache
def stream(name: str) -> bytes:
    return stream_path(name).read_bytes()


@dataclass(frozen=True, slots=True)
class Packet:
    dts: int  # in the stream's time base (1 / the track's timescale)
    duration: int
    keyframe: bool


def packets(data: bytes | Path) -> dict[str, list[Packet]]:
    """PyAV's view of a stream, keyed by ``"video"`` / ``"audio"``: what the parser must agree with."""
    import io

    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    found: dict[str, list[Packet]] = {}
    with av.open(source, mode="r", format="mp4") as container:
        for packet in container.demux():
            if packet.size == 0 or packet.dts is None:
                continue  # the flush packets at the end
            kind = packet.stream.type
            found.setdefault(kind, []).append(Packet(packet.dts, packet.duration or 0, packet.is_keyframe))
    return found


def top_level(data: bytes) -> list[tuple[str, int, int]]:
    """(type, offset, size) of each top-level box."""
    out, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        out.append((kind.decode(), offset, size))
        offset += size
    return out


def decode_errors(data: bytes) -> str:
    """What ``ffmpeg -v error`` says while decoding every frame of ``data`` (empty: none)."""
    result = subprocess.run(
        [ffmpeg(), "-hide_banner", "-v", "error", "-i", "-", "-f", "null", "-"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    status = "" if result.returncode == 0 else f"exit status {result.returncode}"
    return result.stderr.decode(errors="replace") + status


# Boxes whose body is nothing but boxes (the ones the tests need to edit inside).
CONTAINERS = frozenset({"moov", "trak", "mdia", "minf", "stbl", "mvex", "moof", "traf", "edts", "dinf"})


@dataclass(slots=True)
class Node:
    """One box: a container's children, or any other box's body bytes."""

    type: str
    body: bytes = b""
    children: list[Node] = field(default_factory=list)

    def find(self, kind: str) -> list[Node]:
        return [child for child in self.children if child.type == kind]

    def first(self, kind: str) -> Node:
        return self.find(kind)[0]


def parse_boxes(data: bytes) -> list[Node]:
    """The boxes of ``data`` (trusted test media: no error handling)."""
    nodes, offset = [], 0
    while offset < len(data):
        size, raw = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        kind, body = raw.decode("latin-1"), data[offset + header : offset + size]
        if kind in CONTAINERS:
            nodes.append(Node(kind, children=parse_boxes(body)))
        else:
            nodes.append(Node(kind, body))
        offset += size
    return nodes


def serialize(nodes: list[Node]) -> bytes:
    out = []
    for node in nodes:
        body = serialize(node.children) if node.type in CONTAINERS else node.body
        out.append(struct.pack(">I4s", 8 + len(body), node.type.encode("latin-1")) + body)
    return b"".join(out)


def full_box(version: int, flags: int, fields: bytes) -> bytes:
    return struct.pack(">I", version << 24 | flags) + fields


def box_size(node: Node) -> int:
    return len(serialize([node]))


def data_offset(trun: Node) -> int:
    flags, _, offset = struct.unpack(">IIi", trun.body[:12])
    assert flags & 0x1, "the tests' muxer always writes data_offset"
    return int(offset)


def set_data_offset(trun: Node, value: int) -> None:
    trun.body = trun.body[:8] + struct.pack(">i", value) + trun.body[12:]


def set_u32(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + struct.pack(">I", value) + data[at + 4 :]


def trun_sample_sizes(trun: Node) -> list[int]:
    flags, count = struct.unpack(">II", trun.body[:8])
    fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
    start = 8 + 4 * bool(flags & 0x1) + 4 * bool(flags & 0x4)
    rows = struct.iter_unpack(">" + "I" * len(fields), trun.body[start : start + 4 * len(fields) * count])
    return [row[fields.index(0x200)] for row in rows]


def with_v0_tfdt(data: bytes) -> bytes:
    """``data`` with every (version 1) tfdt rewritten as version 0, as some muxers write it:
    4 bytes shorter, so every moof-relative trun data_offset moves back by 4 per tfdt."""
    boxes = parse_boxes(data)
    for moof in (node for node in boxes if node.type == "moof"):
        shrink = 0
        for traf in moof.find("traf"):
            tfdt = traf.first("tfdt")
            time = struct.unpack(">Q", tfdt.body[4:12])[0]
            assert tfdt.body[0] == 1 and time < 2**32
            tfdt.body = b"\0" + tfdt.body[1:4] + struct.pack(">I", time)
            shrink += 4
        for trun in (traf.first("trun") for traf in moof.find("traf")):
            set_data_offset(trun, data_offset(trun) - shrink)
    return serialize(boxes)


def with_implicit_base(data: bytes) -> bytes:
    """``data`` without default-base-is-moof: the first traf's data counts from the moof, a
    later traf's from where the previous traf's data ends (ISO 14496-12 §8.8.7.1)."""
    boxes = parse_boxes(data)
    for moof in (node for node in boxes if node.type == "moof"):
        previous_end = 0
        for traf in moof.find("traf"):
            tfhd, trun = traf.first("tfhd"), traf.first("trun")
            flags = struct.unpack(">I", tfhd.body[:4])[0] & ~0x20000
            tfhd.body = struct.pack(">I", flags) + tfhd.body[4:]
            offset = data_offset(trun)
            set_data_offset(trun, offset - previous_end)
            previous_end = offset + sum(trun_sample_sizes(trun))
    return serialize(boxes)


# A sample entry's fields before its child boxes (ISO 14496-12 §12.1.3, §12.2.3).
VISUAL_FIELDS = bytes(6) + b"\0\1" + bytes(16) + struct.pack(">HH", 1920, 1080) + bytes(50)
AUDIO_FIELDS = bytes(6) + b"\0\1" + bytes(8) + struct.pack(">HHHHI", 2, 16, 0, 0, 44100 << 16)


def with_sample_entry(init: bytes, kind: str, handler: str, children: bytes) -> bytes:
    """A one-track init segment with its handler and sample entry replaced: a 1920x1080
    picture for ``vide``, 44.1 kHz stereo for ``soun``, only the common fields otherwise."""
    boxes = parse_boxes(init)
    mdia = boxes[1].first("trak").first("mdia")
    hdlr = mdia.first("hdlr")
    hdlr.body = hdlr.body[:8] + handler.encode() + hdlr.body[12:]
    fields = {"vide": VISUAL_FIELDS, "soun": AUDIO_FIELDS}.get(handler, bytes(6) + b"\0\1")
    stsd = mdia.first("minf").first("stbl").first("stsd")
    stsd.body = stsd.body[:8] + serialize([Node(kind, fields + children)])
    return serialize(boxes)


def esds_body(object_type: int, config: str) -> str:
    """An esds body in hex: ES_Descriptor > DecoderConfigDescriptor > DecoderSpecificInfo."""
    decoder = bytes([object_type, 0x15]) + bytes(11) + bytes([0x05, len(config) // 2]) + bytes.fromhex(config)
    es = b"\0\1\0" + bytes([0x04, len(decoder)]) + decoder
    return (bytes(4) + bytes([0x03, 0x80, 0x80, 0x80, len(es)]) + es).hex()  # a 4-byte expandable size
