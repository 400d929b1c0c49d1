"""H.264 and HEVC NAL units: Annex B byte streams split, parameter sets read, and the
decoder configuration records (``avcC``, ``hvcC``) built from them.

MPEG-TS carries video as an Annex B byte stream (start codes, parameter sets in band);
MP4 and FLV want length-prefixed NAL units and the parameter sets in a configuration
record (ISO 14496-15 §5.3.3.1 for AVC, §8.3.3.1 for HEVC). This module holds the pure
conversions; :mod:`server.media.ts_remux` decides when to use them.

The sequence parameter set is read (Exp-Golomb codes, emulation prevention bytes
removed) only as far as the record needs: its id, and for HEVC the profile, tier and level,
chroma format and bit depths. A parameter set cut short or out of range is
``media.bad_config``: no decoder could use the stream either.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable

from server.errors import MediaError

_LENGTH_SIZE = 4  # the NAL unit length prefix we write (lengthSizeMinusOne = 3)
# H.264 profiles whose SPS carries chroma_format_idc and bit depths (ITU-T H.264 §7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_MAX_ID = 255  # the largest parameter set id of both codecs (an H.264 PPS)


class Codec(enum.Enum):
    H264 = "avc1"
    HEVC = "hvc1"


# NAL unit types (H.264 Table 7-1, H.265 Table 7-1).
AVC_IDR, AVC_SPS, AVC_PPS, AVC_AUD = 5, 7, 8, 9
HEVC_VPS, HEVC_SPS, HEVC_PPS, HEVC_AUD = 32, 33, 34, 35
HEVC_IRAP = range(16, 24)


def nal_type(codec: Codec, nal: bytes) -> int:
    return nal[0] & 0x1F if codec is Codec.H264 else nal[0] >> 1 & 0x3F


def split_annex_b(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream: between ``00 00 01`` start codes (a 4-byte
    ``00 00 00 01`` is the same with a zero before it), trailing zero bytes removed."""
    units: list[bytes] = []
    start = data.find(b"\0\0\1")
    while start >= 0:
        begin = start + 3
        start = data.find(b"\0\0\1", begin)
        unit = data[begin : len(data) if start < 0 else start].rstrip(b"\0")
        if unit:
            units.append(unit)
    return units


def length_prefixed(units: Iterable[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(unit)) + unit for unit in units)


def _with_length(unit: bytes) -> bytes:
    """A parameter set as a configuration record holds it: a 16-bit length, then the unit."""
    if len(unit) > 0xFFFF:
        raise MediaError("media.bad_config", f"a parameter set of {len(unit)} bytes")
    return struct.pack(">H", len(unit)) + unit


class _Bits:
    """A big-endian bit reader over an RBSP; reading past its end is ``media.bad_config``."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, count: int) -> int:
        end = self.pos + count
        if end > 8 * len(self.data):
            raise MediaError("media.bad_config", "a parameter set is cut short")
        first, last = self.pos >> 3, (end + 7) >> 3
        chunk = int.from_bytes(self.data[first:last], "big")
        self.pos = end
        return chunk >> (8 * last - end) & ((1 << count) - 1)

    def ue(self) -> int:
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise MediaError("media.bad_config", "an Exp-Golomb code in a parameter set is too long")
        return (1 << zeros) - 1 + self.u(zeros)


def rbsp(nal: bytes, header_size: int) -> bytes:
    """The payload of a NAL unit after its header, emulation prevention bytes removed."""
    return nal[header_size:].replace(b"\0\0\3", b"\0\0")


def parameter_set_id(codec: Codec, nal: bytes) -> int:
    """The id of a VPS, SPS or PPS (what a later one with the same id replaces)."""
    kind = nal_type(codec, nal)
    if codec is Codec.H264:
        bits = _Bits(rbsp(nal, 1))
        if kind == AVC_SPS:
            bits.u(24)  # profile_idc, constraint flags, level_idc
        value = bits.ue()
    elif kind == HEVC_VPS:
        value = _Bits(rbsp(nal, 2)).u(4)
    elif kind == HEVC_SPS:
        value = _hevc_sps(rbsp(nal, 2)).sps_id
    else:
        value = _Bits(rbsp(nal, 2)).ue()
    if value > _MAX_ID:
        raise MediaError("media.bad_config", f"a parameter set has id {value}")
    return value


def avc_config(sps: list[bytes], pps: list[bytes]) -> bytes:
    """An AVCDecoderConfigurationRecord of these parameter sets (the first SPS gives the
    profile and level), with the high profiles' chroma and bit depth fields."""
    if not sps or not pps or len(sps) > 31 or len(pps) > 255:
        raise MediaError("media.bad_config", f"an H.264 configuration of {len(sps)} SPS and {len(pps)} PPS")
    first = sps[0]
    if len(first) < 4:
        raise MediaError("media.bad_config", "an H.264 SPS is cut short")
    profile = first[1]
    record = bytearray([1, profile, first[2], first[3], 0xFC | (_LENGTH_SIZE - 1), 0xE0 | len(sps)])
    record += b"".join(map(_with_length, sps))
    record.append(len(pps))
    record += b"".join(map(_with_length, pps))
    if profile in _HIGH_PROFILES:
        bits = _Bits(rbsp(first, 1))
        bits.u(24)
        bits.ue()  # seq_parameter_set_id
        chroma = bits.ue()
        if chroma > 3:
            raise MediaError("media.bad_config", f"an H.264 SPS has chroma_format_idc {chroma}")
        if chroma == 3:
            bits.u(1)  # separate_colour_plane_flag
        luma, chroma_depth = bits.ue(), bits.ue()
        if max(luma, chroma_depth) > 6:
            raise MediaError("media.bad_config", "an H.264 SPS has a bit depth over 14")
        record += bytes([0xFC | chroma, 0xF8 | luma, 0xF8 | chroma_depth, 0])
    return bytes(record)


class _HevcSps:
    __slots__ = ("bit_depth_chroma", "bit_depth_luma", "chroma", "profile_tier_level", "sps_id", "sub_layers")

    def __init__(self) -> None:
        self.sps_id = self.chroma = self.bit_depth_luma = self.bit_depth_chroma = 0
        self.sub_layers = 1
        self.profile_tier_level = b""  # the 12 general bytes, as hvcC repeats them


def _hevc_sps(data: bytes) -> _HevcSps:
    """What hvcC repeats of an HEVC SPS (H.265 §7.3.2.2, §7.3.3)."""
    bits, sps = _Bits(data), _HevcSps()
    bits.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = bits.u(3)
    bits.u(1)  # sps_temporal_id_nesting_flag
    sps.sub_layers = max_sub_layers_minus1 + 1
    if len(data) < 13:
        raise MediaError("media.bad_config", "an HEVC SPS is cut short")
    sps.profile_tier_level = data[1:13]
    bits.u(96)
    flags = [(bits.u(1), bits.u(1)) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1:
        bits.u(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile_present, level_present in flags:
        bits.u(88 * profile_present + 8 * level_present)
    sps.sps_id = bits.ue()
    sps.chroma = bits.ue()
    if sps.chroma > 3:
        raise MediaError("media.bad_config", f"an HEVC SPS has chroma_format_idc {sps.chroma}")
    if sps.chroma == 3:
        bits.u(1)  # separate_colour_plane_flag
    bits.ue()  # pic_width_in_luma_samples
    bits.ue()  # pic_height_in_luma_samples
    if bits.u(1):  # conformance_window_flag
        for _ in range(4):
            bits.ue()
    sps.bit_depth_luma, sps.bit_depth_chroma = bits.ue(), bits.ue()
    if max(sps.bit_depth_luma, sps.bit_depth_chroma) > 7:
        raise MediaError("media.bad_config", "an HEVC SPS has a bit depth over 15")
    return sps


def hevc_config(vps: list[bytes], sps: list[bytes], pps: list[bytes]) -> bytes:
    """An HEVCDecoderConfigurationRecord of these parameter sets (the first SPS gives the
    profile, tier, level, chroma format and bit depths); every array is complete."""
    if not vps or not sps or not pps:
        raise MediaError("media.bad_config", "an HEVC configuration needs a VPS, an SPS and a PPS")
    info = _hevc_sps(rbsp(sps[0], 2))
    record = bytearray([1])
    record += info.profile_tier_level  # profile space/tier/idc, compatibility, constraints, level
    record += struct.pack(">HB", 0xF000, 0xFC)  # min_spatial_segmentation_idc 0, parallelismType 0
    record += bytes([0xFC | info.chroma, 0xF8 | info.bit_depth_luma, 0xF8 | info.bit_depth_chroma])
    record += struct.pack(">H", 0)  # avgFrameRate: unknown
    nesting = sps[0][2] & 0x1 if len(sps[0]) > 2 else 0  # sps_temporal_id_nesting_flag
    record.append(info.sub_layers << 3 | nesting << 2 | (_LENGTH_SIZE - 1))
    record.append(3)
    for kind, units in ((HEVC_VPS, vps), (HEVC_SPS, sps), (HEVC_PPS, pps)):
        record += struct.pack(">BH", 0x80 | kind, len(units))
        record += b"".join(map(_with_length, units))
    return bytes(record)
