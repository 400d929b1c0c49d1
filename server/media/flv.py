"""FLV: the tags of a file or pipe, and the audio and video messages RTMP carries.

This module owns two grammars, both sans-I/O and bounded:

- :class:`FlvReader` splits an FLV byte stream (``FLV`` header, then ``tag``
  ``PreviousTagSize`` pairs) in any chunking into :class:`FlvTag` values. RTMP has no
  such framing: its audio (8) and video (9) messages are tag bodies with a timestamp, so
  an RTMP session builds :class:`FlvTag` values itself and skips the reader.
- :func:`parse_video` and :func:`parse_audio` read one tag body: the legacy headers
  (``FrameType|CodecID`` + ``AVCPacketType`` + composition time for H.264;
  ``SoundFormat|…`` + ``AACPacketType`` for AAC) and the Enhanced RTMP v2 headers
  (``IsExHeader`` + FourCC: ``hvc1``, ``av01``, ``avc1`` video; ``Opus``, ``mp4a`` audio),
  including ``ModEx`` prefixes (skipped: our timestamps are milliseconds) and one-track
  ``Multitrack`` packets. Several tracks in one message are refused: we relay one track
  per kind.

Every malformed byte is a :class:`~server.errors.MediaError` with a ``media.*`` code:
``media.truncated_flv`` (a tag or header cut short), ``media.bad_flv`` (a field that
cannot be), ``media.tag_too_large`` (over ``max_tag_size``) and
``media.unsupported_codec`` (a codec we cannot put in fMP4 without transcoding).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from server.errors import MediaError

#: Default for ``max_tag_size``: a tag body of 4 MiB holds a 1080p keyframe many times over.
DEFAULT_MAX_TAG_SIZE = 4 * 2**20

FILE_HEADER_SIZE = 9
TAG_HEADER_SIZE = 11
_BACK_POINTER = 4  # PreviousTagSize after the file header and after every tag


class TagKind(enum.IntEnum):
    AUDIO = 8
    VIDEO = 9
    SCRIPT = 18


_TAG_KINDS = frozenset(kind.value for kind in TagKind)


@dataclass(frozen=True, slots=True)
class FlvTag:
    """One audio, video or script message: its millisecond timestamp and its body."""

    kind: TagKind
    timestamp: int  # milliseconds (the decode time for video)
    payload: bytes


class ReaderState(enum.Enum):
    EXPECT_HEADER = "expect_header"  # the 9-byte file header and the first back pointer
    EXPECT_TAG = "expect_tag"  # a tag header, or the end of the stream
    IN_TAG = "in_tag"  # a tag body and its back pointer
    FAILED = "failed"  # an error was raised; every later feed raises it again


class FlvReader:
    """Split an FLV byte stream into :class:`FlvTag` values, in any chunking.

    ``max_tag_size`` (default 4 MiB) bounds a tag body; a larger one is refused with
    ``media.tag_too_large`` from its header, before any of its body is buffered. Tags of
    other types (encrypted or reserved) are skipped, not buffered.
    """

    def __init__(self, *, max_tag_size: int = DEFAULT_MAX_TAG_SIZE) -> None:
        if max_tag_size < 1:
            raise ValueError("max_tag_size must be positive")
        self.max_tag_size = max_tag_size
        self._state = ReaderState.EXPECT_HEADER
        self._buffer = bytearray()
        self._position = 0  # stream offset of _buffer[0]
        self._error: MediaError | None = None
        self.has_audio = False  # from the file header's flags
        self.has_video = False

    @property
    def state(self) -> ReaderState:
        return self._state

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[FlvTag]:
        """Consume ``data`` and return the tags it completed. Raises :class:`MediaError`
        on the first malformed byte; the reader is then FAILED for good."""
        if self._error is not None:
            raise MediaError(self._error.code, f"the stream already failed: {self._error.message}")
        self._buffer += data
        tags: list[FlvTag] = []
        try:
            self._consume(tags)
        except MediaError as exc:
            self._state, self._error = ReaderState.FAILED, exc
            raise
        return tags

    def close(self) -> None:
        """The stream ended: ``media.truncated_flv`` if it stopped inside a header or tag."""
        if self._error is None and (self._buffer or self._state is ReaderState.EXPECT_HEADER):
            self._error = MediaError(
                "media.truncated_flv", f"the FLV stream ended inside a unit at byte {self._position}"
            )
            self._state = ReaderState.FAILED
            raise self._error

    def _consume(self, tags: list[FlvTag]) -> None:
        buffer = self._buffer
        pos = 0
        try:
            while True:
                if self._state is ReaderState.EXPECT_HEADER:
                    if len(buffer) - pos < FILE_HEADER_SIZE + _BACK_POINTER:
                        return
                    self._read_file_header(bytes(buffer[pos : pos + FILE_HEADER_SIZE]))
                    pos += struct.unpack_from(">I", buffer, pos + 5)[0] + _BACK_POINTER
                    self._state = ReaderState.EXPECT_TAG
                    continue
                if len(buffer) - pos < TAG_HEADER_SIZE:
                    return
                flags = buffer[pos]
                size = int.from_bytes(buffer[pos + 1 : pos + 4], "big")
                # TimestampExtended holds the upper 8 bits of the 32-bit millisecond clock.
                timestamp = int.from_bytes(buffer[pos + 4 : pos + 7], "big") | buffer[pos + 7] << 24
                at = self._position + pos
                if flags & 0xC0:
                    raise MediaError("media.bad_flv", f"tag at byte {at} sets reserved bits ({flags:#04x})")
                if size > self.max_tag_size:
                    raise MediaError(
                        "media.tag_too_large", f"tag at byte {at} is {size} bytes, over {self.max_tag_size}"
                    )
                self._state = ReaderState.IN_TAG
                total = TAG_HEADER_SIZE + size + _BACK_POINTER
                if len(buffer) - pos < total:
                    return
                back = struct.unpack_from(">I", buffer, pos + TAG_HEADER_SIZE + size)[0]
                if back != TAG_HEADER_SIZE + size:
                    raise MediaError(
                        "media.bad_flv",
                        f"tag at byte {at} has {TAG_HEADER_SIZE + size} bytes but PreviousTagSize {back}",
                    )
                kind = flags & 0x1F
                if kind in _TAG_KINDS and not flags & 0x20:  # 0x20: filtered (encrypted)
                    body = bytes(buffer[pos + TAG_HEADER_SIZE : pos + TAG_HEADER_SIZE + size])
                    tags.append(FlvTag(TagKind(kind), timestamp, body))
                pos += total
                self._state = ReaderState.EXPECT_TAG
        finally:
            del buffer[:pos]
            self._position += pos

    def _read_file_header(self, header: bytes) -> None:
        signature, version, flags, offset = struct.unpack(">3sBBI", header)
        if signature != b"FLV":
            raise MediaError("media.bad_flv", f"the stream starts with {signature!r}, not b'FLV'")
        if version != 1:
            raise MediaError("media.bad_flv", f"FLV version {version} is unknown")
        if offset != FILE_HEADER_SIZE:
            raise MediaError("media.bad_flv", f"the FLV header declares {offset} bytes, not 9")
        self.has_audio, self.has_video = bool(flags & 0x04), bool(flags & 0x01)


class PacketType(enum.Enum):
    """What a video or audio message carries, legacy and Enhanced RTMP alike."""

    SEQUENCE_START = "sequence_start"  # the decoder configuration record
    CODED_FRAMES = "coded_frames"  # one access unit (video) or frame (audio)
    SEQUENCE_END = "sequence_end"
    IGNORED = "ignored"  # metadata, command frames, info frames: nothing to relay


@dataclass(frozen=True, slots=True)
class VideoMessage:
    codec: str  # ISO sample entry FourCC: "avc1", "hvc1", "av01" ("" for a command frame)
    packet: PacketType
    keyframe: bool
    composition_offset: int  # milliseconds from decode to presentation time (signed)
    data: bytes  # the configuration record, or length-prefixed NAL units / OBUs


@dataclass(frozen=True, slots=True)
class AudioMessage:
    codec: str  # "mp4a" or "Opus"
    packet: PacketType
    data: bytes  # AudioSpecificConfig / OpusHead, or one raw frame


_LEGACY_VIDEO = {7: "avc1", 12: "hvc1"}  # 12: the pre-standard HEVC codec id some Chinese CDNs use
_VIDEO_FOURCC = {b"avc1": "avc1", b"hvc1": "hvc1", b"av01": "av01"}
_AUDIO_FOURCC = {b"mp4a": "mp4a", b"Opus": "Opus"}
_EX_VIDEO = {
    0: PacketType.SEQUENCE_START,
    1: PacketType.CODED_FRAMES,
    2: PacketType.SEQUENCE_END,
    3: PacketType.CODED_FRAMES,  # CodedFramesX: no composition time, it is zero
    4: PacketType.IGNORED,  # Metadata (colour info)
}
_EX_AUDIO = {0: PacketType.SEQUENCE_START, 1: PacketType.CODED_FRAMES, 2: PacketType.SEQUENCE_END}
_MULTITRACK, _MODEX = 6, 7
_AUDIO_MULTITRACK = 5
_MULTICHANNEL_CONFIG = 4
_COMMAND_FRAME = 5


class _Cursor:
    """Fields read in order from one message body, never past its end."""

    __slots__ = ("data", "name", "pos")

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name, self.pos = data, name, 0

    def take(self, count: int) -> bytes:
        if count > len(self.data) - self.pos:
            raise MediaError(
                "media.truncated_flv",
                f"{self.name} message needs {count} byte(s) at byte {self.pos} but has {len(self.data)}",
            )
        self.pos += count
        return self.data[self.pos - count : self.pos]

    def u8(self) -> int:
        return self.take(1)[0]

    def rest(self) -> bytes:
        return self.data[self.pos :]


def _skip_modex(cursor: _Cursor, packet_type: int) -> int:
    """Skip Enhanced RTMP v2 ``ModEx`` prefixes (nanosecond timestamp offsets and future
    extensions) and return the packet type that follows them."""
    for _ in range(8):  # a bound: a real message has one
        if packet_type != _MODEX:
            return packet_type
        size = cursor.u8() + 1
        if size == 256:
            size = int.from_bytes(cursor.take(2), "big") + 1
        cursor.take(size)
        packet_type = cursor.u8() & 0x0F
    raise MediaError("media.bad_flv", f"{cursor.name} message chains more than 8 ModEx prefixes")


def _one_track(cursor: _Cursor, fourccs: dict[bytes, str]) -> tuple[int, str]:
    """A ``Multitrack`` header: only ``OneTrack`` is taken; returns its packet type and FourCC."""
    byte = cursor.u8()
    multitrack_type, packet_type = byte >> 4, byte & 0x0F
    if multitrack_type != 0:
        raise MediaError(
            "media.unsupported_codec", f"{cursor.name} message carries several tracks; send one per kind"
        )
    fourcc = _fourcc(cursor, fourccs)
    cursor.u8()  # trackId: a single track whatever its number
    return packet_type, fourcc


def _fourcc(cursor: _Cursor, known: dict[bytes, str]) -> str:
    raw = cursor.take(4)
    if raw not in known:
        raise MediaError(
            "media.unsupported_codec",
            f"{cursor.name} codec {raw.decode('latin-1')!r} cannot be relayed without transcoding",
        )
    return known[raw]


def parse_video(payload: bytes) -> VideoMessage:
    """Read a video tag body (legacy H.264 or Enhanced RTMP)."""
    cursor = _Cursor(payload, "video")
    first = cursor.u8()
    if first & 0x80:  # IsExHeader
        frame_type, packet_type = (first >> 4) & 0x07, first & 0x0F
        packet_type = _skip_modex(cursor, packet_type)
        if frame_type == _COMMAND_FRAME and packet_type != 4:
            cursor.u8()  # VideoCommand (start or end of a seek): no FourCC, no body
            return VideoMessage("", PacketType.IGNORED, False, 0, b"")
        if packet_type == _MULTITRACK:
            packet_type, codec = _one_track(cursor, _VIDEO_FOURCC)
        else:
            codec = _fourcc(cursor, _VIDEO_FOURCC)
        if packet_type not in _EX_VIDEO:
            raise MediaError("media.bad_flv", f"video PacketType {packet_type} is unknown")
        offset = 0
        if packet_type == 1 and codec in ("avc1", "hvc1"):
            offset = _si24(cursor.take(3))
        return VideoMessage(codec, _EX_VIDEO[packet_type], frame_type == 1, offset, cursor.rest())
    frame_type, codec_id = first >> 4, first & 0x0F
    if frame_type == _COMMAND_FRAME:
        return VideoMessage("avc1", PacketType.IGNORED, False, 0, b"")
    if codec_id not in _LEGACY_VIDEO:
        raise MediaError(
            "media.unsupported_codec", f"FLV video codec id {codec_id} cannot be relayed without transcoding"
        )
    avc_packet_type = cursor.u8()
    offset = _si24(cursor.take(3))
    if avc_packet_type > 2:
        raise MediaError("media.bad_flv", f"AVCPacketType {avc_packet_type} is unknown")
    packet = (PacketType.SEQUENCE_START, PacketType.CODED_FRAMES, PacketType.SEQUENCE_END)[avc_packet_type]
    return VideoMessage(_LEGACY_VIDEO[codec_id], packet, frame_type == 1, offset, cursor.rest())


def parse_audio(payload: bytes) -> AudioMessage:
    """Read an audio tag body (legacy AAC or Enhanced RTMP)."""
    cursor = _Cursor(payload, "audio")
    first = cursor.u8()
    sound_format = first >> 4
    if sound_format == 9:  # ExHeader
        packet_type = _skip_modex(cursor, first & 0x0F)
        if packet_type == _AUDIO_MULTITRACK:
            packet_type, codec = _one_track(cursor, _AUDIO_FOURCC)
        else:
            codec = _fourcc(cursor, _AUDIO_FOURCC)
        if packet_type == _MULTICHANNEL_CONFIG:
            return AudioMessage(codec, PacketType.IGNORED, b"")  # the config record says it too
        if packet_type not in _EX_AUDIO:
            raise MediaError("media.bad_flv", f"audio PacketType {packet_type} is unknown")
        return AudioMessage(codec, _EX_AUDIO[packet_type], cursor.rest())
    if sound_format != 10:
        raise MediaError(
            "media.unsupported_codec",
            f"FLV sound format {sound_format} cannot be relayed without transcoding (send AAC or Opus)",
        )
    aac_packet_type = cursor.u8()
    if aac_packet_type > 1:
        raise MediaError("media.bad_flv", f"AACPacketType {aac_packet_type} is unknown")
    packet = PacketType.SEQUENCE_START if aac_packet_type == 0 else PacketType.CODED_FRAMES
    return AudioMessage("mp4a", packet, cursor.rest())


def _si24(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)
