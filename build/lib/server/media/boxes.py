"""ISO BMFF (ISO/IEC 14496-12) at the byte level: box headers, child boxes, bounded fields;
and what a ``moov`` declares about its tracks, down to the codec configuration records.

This module owns the one place where lengths read from untrusted bytes are checked. Every
box header, every walk over a container's children and every field read goes through
:func:`read_header`, :func:`children` or :class:`Reader`, and each malformed length ends in
a :class:`~server.errors.MediaError` naming the box, never in an ``IndexError`` or a
``struct.error``. :func:`parse_tracks` reads ``trak``/``trex`` into
:class:`~server.media.types.Track` values and turns ``avcC``/``hvcC``/``vpcC``/``av1C``/
``esds``/``dOps`` into the RFC 6381 strings a browser checks (``avc1.64001f``,
``hvc1.1.6.L93.B0``, ``mp4a.40.2``). The stream grammar and the ``moof`` boxes belong to
:mod:`server.media.fmp4`.

A box header is ``size:u32 type:4cc``; ``size == 1`` means a ``largesize:u64`` follows,
and ``size == 0`` means "until the end of the file". A live stream has no end of file, so
``size == 0`` is refused with ``media.truncated_box`` wherever it appears: accepting it
would mean buffering without bound while waiting for an end that never comes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from server.errors import MediaError
from server.media.types import Track, TrackKind

#: The shortest box header (``size:u32 type:4cc``).
HEADER_SIZE = 8
#: The longest box header (with a 64-bit ``largesize``); what a parser may need before a box.
MAX_HEADER_SIZE = 16

Buffer = bytes | bytearray | memoryview

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")


@dataclass(frozen=True, slots=True)
class Box:
    """Where one box lies in a buffer: ``offset`` is its first header byte."""

    type: str
    offset: int
    size: int  # the whole box, header included
    header_size: int  # 8, or 16 with a largesize

    @property
    def body(self) -> int:
        """Offset of the first byte after the header."""
        return self.offset + self.header_size

    @property
    def end(self) -> int:
        return self.offset + self.size


def read_header(data: Buffer, offset: int, end: int, *, origin: int = 0) -> Box | None:
    """The header of the box at ``offset``, or ``None`` when fewer header bytes than needed
    are available before ``end`` (an incremental parser then waits for more).

    Only the header is checked here (not that the body fits before ``end``): a streaming
    caller compares ``size`` with its limit before it buffers the body. ``origin`` is added
    to offsets in error messages, so that they name the byte of the stream.
    """
    if end - offset < HEADER_SIZE:
        return None
    size = _U32.unpack_from(data, offset)[0]
    kind = bytes(data[offset + 4 : offset + 8]).decode("latin-1")  # any byte value prints
    header_size = HEADER_SIZE
    if size == 1:
        if end - offset < MAX_HEADER_SIZE:
            return None
        size = _U64.unpack_from(data, offset + 8)[0]
        header_size = MAX_HEADER_SIZE
    elif size == 0:
        raise MediaError(
            "media.truncated_box",
            f"{kind!r} box at byte {origin + offset} has size 0 (to end of file), impossible live",
        )
    if size < header_size:
        raise MediaError(
            "media.truncated_box",
            f"{kind!r} box at byte {origin + offset} declares {size} bytes, less than its header",
        )
    return Box(kind, offset, size, header_size)


def children(data: Buffer, start: int, end: int, *, parent: str) -> Iterator[Box]:
    """The boxes laid end to end in ``data[start:end]`` (a container's body).

    Every child must fit inside the parent exactly; a child that runs past the parent's end
    (or a header cut short by it) is ``media.truncated_box``.
    """
    offset = start
    while offset < end:
        box = read_header(data, offset, end)
        if box is None:
            raise MediaError(
                "media.truncated_box",
                f"{parent!r} box ends {end - offset} byte(s) into a child box header at byte {offset}",
            )
        if box.end > end:
            raise MediaError(
                "media.truncated_box",
                f"{box.type!r} box at byte {offset} declares {box.size} bytes but its parent "
                f"{parent!r} has only {end - offset} left",
            )
        yield box
        offset = box.end


def child_map(data: Buffer, box: Box, *, skip: int = 0) -> dict[str, list[Box]]:
    """The children of ``box`` grouped by type, in order; ``skip`` jumps over fields that
    come before them (a full box's version and flags, a sample entry's fixed part)."""
    if box.body + skip > box.end:
        raise MediaError(
            "media.truncated_box", f"{box.type!r} box at byte {box.offset} is too short for its fields"
        )
    found: dict[str, list[Box]] = {}
    for child in children(data, box.body + skip, box.end, parent=box.type):
        found.setdefault(child.type, []).append(child)
    return found


class Reader:
    """Big-endian fields read in order from the body of one box, never past its end.

    A read past the end is ``media.truncated_box`` with the box's name: the box declared a
    size too small for what its own version and flags say it contains.
    """

    __slots__ = ("_data", "_end", "_name", "pos")

    def __init__(self, data: Buffer, box: Box) -> None:
        self._data = data
        self._name = box.type
        self._end = box.end
        self.pos = box.body

    @property
    def remaining(self) -> int:
        return self._end - self.pos

    def _take(self, count: int) -> int:
        if count > self._end - self.pos:
            raise MediaError(
                "media.truncated_box",
                f"{self._name!r} box needs {count} more byte(s) at byte {self.pos} but ends at {self._end}",
            )
        start = self.pos
        self.pos += count
        return start

    def skip(self, count: int) -> None:
        self._take(count)

    def raw(self, count: int) -> bytes:
        start = self._take(count)
        return bytes(self._data[start : start + count])

    def u8(self) -> int:
        return self._data[self._take(1)]

    def u16(self) -> int:
        value: int = _U16.unpack_from(self._data, self._take(2))[0]
        return value

    def u24(self) -> int:
        start = self._take(3)
        return int.from_bytes(self._data[start : start + 3], "big")

    def u32(self) -> int:
        value: int = _U32.unpack_from(self._data, self._take(4))[0]
        return value

    def i32(self) -> int:
        value: int = _I32.unpack_from(self._data, self._take(4))[0]
        return value

    def u64(self) -> int:
        value: int = _U64.unpack_from(self._data, self._take(8))[0]
        return value

    def full_header(self) -> tuple[int, int]:
        """A full box's ``version:u8 flags:u24``."""
        return self.u8(), self.u24()


_HANDLERS = {"vide": TrackKind.VIDEO, "soun": TrackKind.AUDIO}


def _first(found: dict[str, list[Box]], kind: str, parent: str) -> Box:
    if kind not in found:
        raise MediaError("media.bad_init", f"{parent!r} box has no {kind!r} box")
    return found[kind][0]


def parse_tracks(data: Buffer, header_size: int) -> tuple[Track, ...]:
    """The tracks a ``moov`` (``data`` is the whole box) declares, with their trex defaults."""
    moov = child_map(data, Box("moov", 0, len(data), header_size))
    mvex = _first(moov, "mvex", "moov")
    defaults: dict[int, tuple[int, int, int]] = {}
    for trex in child_map(data, mvex).get("trex", []):
        r = Reader(data, trex)
        r.full_header()
        track_id, _, duration, size, flags = (r.u32() for _ in range(5))
        defaults[track_id] = (duration, size, flags)
    tracks = [_parse_trak(data, trak, defaults) for trak in moov.get("trak", [])]
    if not tracks:
        raise MediaError("media.bad_init", "the moov declares no track")
    if len({t.id for t in tracks}) != len(tracks):
        raise MediaError("media.bad_init", "two tracks in the moov share a track_ID")
    return tuple(tracks)


def _parse_trak(data: Buffer, trak: Box, defaults: dict[int, tuple[int, int, int]]) -> Track:
    found = child_map(data, trak)
    r = Reader(data, _first(found, "tkhd", "trak"))
    version, _ = r.full_header()
    r.skip(16 if version == 1 else 8)  # creation and modification times
    track_id = r.u32()
    mdia = child_map(data, _first(found, "mdia", "trak"))
    r = Reader(data, _first(mdia, "mdhd", "mdia"))
    version, _ = r.full_header()
    r.skip(16 if version == 1 else 8)
    timescale = r.u32()
    r = Reader(data, _first(mdia, "hdlr", "mdia"))
    r.full_header()
    r.skip(4)  # pre_defined
    kind = _HANDLERS.get(r.raw(4).decode("latin-1"), TrackKind.OTHER)
    minf = child_map(data, _first(mdia, "minf", "mdia"))
    stbl = child_map(data, _first(minf, "stbl", "minf"))
    entries = child_map(data, _first(stbl, "stsd", "stbl"), skip=8)
    if timescale == 0 or track_id not in defaults or not entries:
        raise MediaError("media.bad_init", f"track {track_id} lacks a timescale, a trex or a sample entry")
    first = min((box for boxes in entries.values() for box in boxes), key=lambda box: box.offset)
    entry = _sample_entry(data, first, visual=kind is TrackKind.VIDEO, audio=kind is TrackKind.AUDIO)
    duration, size, flags = defaults[track_id]
    return Track(
        id=track_id,
        kind=kind,
        timescale=timescale,
        codec=entry.codec,
        width=entry.width,
        height=entry.height,
        sample_rate=entry.sample_rate,
        channels=entry.channels,
        default_sample_duration=duration,
        default_sample_size=size,
        default_sample_flags=flags,
        config=bytes(data[first.offset : first.end]),
    )


@dataclass(frozen=True, slots=True)
class SampleEntry:
    """What a decoder (and MSE's ``isTypeSupported``) must know from an ``stsd`` entry."""

    codec: str  # RFC 6381 / ISO 14496-15 Annex E form
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0


# Bytes between a sample entry's header and its child boxes (ISO 14496-12 §12.1.3, §12.2.3;
# QuickTime sound descriptions version 1 and 2 append 16 and 36 bytes).
_VISUAL_FIELDS = 78
_AUDIO_FIELDS = 28
_AUDIO_EXTRA = {0: 0, 1: 16, 2: 36}
_SIMPLE_CODECS = {"Opus": "opus", "fLaC": "flac"}


def _sample_entry(data: Buffer, entry: Box, *, visual: bool, audio: bool) -> SampleEntry:
    """Read the first sample entry of an ``stsd``; ``visual``/``audio`` come from the handler."""
    r = Reader(data, entry)
    r.skip(8)  # reserved, data_reference_index
    width = height = rate = channels = 0
    skip = 0
    if visual:
        r.skip(16)
        width, height = r.u16(), r.u16()
        skip = _VISUAL_FIELDS
    elif audio:
        version = r.u16()
        r.skip(6)
        channels = r.u16()
        r.skip(6)
        rate = r.u32() >> 16  # 16.16 fixed point
        if version not in _AUDIO_EXTRA:
            raise MediaError(
                "media.bad_init", f"{entry.type!r} sound description version {version} is unknown"
            )
        if version == 2:  # the real values moved to a float64 rate and a u32 channel count
            r.skip(4)
            rate = round(_F64.unpack(r.raw(8))[0])
            channels = r.u32()
        skip = _AUDIO_FIELDS + _AUDIO_EXTRA[version]
    configs = child_map(data, entry, skip=skip) if skip else {}
    kind = entry.type
    if kind in ("encv", "enca"):  # encrypted: the codec is the one named by sinf/frma
        sinf = child_map(data, _first(configs, "sinf", kind))
        kind = Reader(data, _first(sinf, "frma", "sinf")).raw(4).decode("latin-1")
    if kind == "Opus" and "dOps" in configs:
        r = Reader(data, configs["dOps"][0])
        r.skip(1)  # Version
        channels = r.u8()  # OutputChannelCount is what the decoder outputs
    codec = _codec(data, kind, configs)
    return SampleEntry(codec, width, height, rate, channels)


def _codec(data: Buffer, kind: str, configs: dict[str, list[Box]]) -> str:
    if kind in ("avc1", "avc2", "avc3", "avc4"):
        r = Reader(data, _first(configs, "avcC", kind))
        r.skip(1)  # configurationVersion
        profile, compatibility, level = r.u8(), r.u8(), r.u8()
        return f"{kind}.{profile:02x}{compatibility:02x}{level:02x}"
    if kind in ("hvc1", "hev1"):
        return _hevc(kind, Reader(data, _first(configs, "hvcC", kind)))
    if kind == "vp09":
        r = Reader(data, _first(configs, "vpcC", kind))
        r.full_header()
        profile, level, depth = r.u8(), r.u8(), r.u8() >> 4
        return f"vp09.{profile:02d}.{level:02d}.{depth:02d}"
    if kind == "av01":
        r = Reader(data, _first(configs, "av1C", kind))
        r.skip(1)  # marker, version
        profile_level, bits = r.u8(), r.u8()
        tier = "H" if bits & 0x80 else "M"
        depth = (12 if bits & 0x20 else 10) if bits & 0x40 else 8
        return f"av01.{profile_level >> 5}.{profile_level & 0x1F:02d}{tier}.{depth:02d}"
    if kind == "mp4a":
        return _mp4a(Reader(data, _first(configs, "esds", kind)))
    return _SIMPLE_CODECS.get(kind, kind)


def _hevc(kind: str, r: Reader) -> str:
    """ISO 14496-15 Annex E: ``hvc1.[A-C]profile.compat.(L|H)level.constraint bytes``."""
    r.skip(1)  # configurationVersion
    bits = r.u8()
    space = ("", "A", "B", "C")[bits >> 6]
    tier = "H" if bits & 0x20 else "L"
    # The 32 compatibility flags are written in reverse bit order (flag 0 is the MSB).
    compatibility = int(f"{r.u32():032b}"[::-1], 2)
    constraints = r.raw(6).rstrip(b"\0")  # trailing zero bytes are omitted
    level = r.u8()
    parts = [kind, f"{space}{bits & 0x1F}", f"{compatibility:X}", f"{tier}{level}"]
    parts += [f"{byte:02X}" for byte in constraints]
    return ".".join(parts)


def _descriptor(r: Reader) -> tuple[int, int]:
    """An MPEG-4 descriptor header (ISO 14496-1 §8.3.3): tag and expandable size."""
    tag, size = r.u8(), 0
    for _ in range(4):
        byte = r.u8()
        size = size << 7 | byte & 0x7F
        if not byte & 0x80:
            break
    return tag, size


def _mp4a(r: Reader) -> str:
    """``mp4a.OO`` from the esds objectTypeIndication, plus ``.A`` (the AudioSpecificConfig's
    audio object type) for MPEG-4 audio (0x40): ``mp4a.40.2`` is AAC-LC, ``mp4a.6B`` MP3."""
    r.full_header()
    tag, _ = _descriptor(r)
    if tag != 0x03:
        raise MediaError("media.bad_init", f"esds starts with descriptor tag {tag}, not ES_Descriptor")
    r.skip(2)  # ES_ID
    flags = r.u8()
    if flags & 0x80:
        r.skip(2)  # dependsOn_ES_ID
    if flags & 0x40:
        r.skip(r.u8())  # URL
    if flags & 0x20:
        r.skip(2)  # OCR_ES_Id
    tag, _ = _descriptor(r)
    if tag != 0x04:
        raise MediaError("media.bad_init", f"esds has descriptor tag {tag} where DecoderConfig belongs")
    object_type = r.u8()
    r.skip(12)  # streamType, bufferSizeDB, maxBitrate, avgBitrate
    if object_type != 0x40:
        return f"mp4a.{object_type:02X}"
    if r.remaining < 3:
        return "mp4a.40"
    tag, size = _descriptor(r)
    if tag != 0x05 or size == 0:
        return "mp4a.40"
    first = r.u8()
    audio_object_type = first >> 3
    if audio_object_type == 31:  # escape: 6 more bits follow
        audio_object_type = 32 + ((first & 0x07) << 3 | r.u8() >> 5)
    return f"mp4a.40.{audio_object_type}"
