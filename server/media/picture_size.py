"""The picture size a video decoder configuration record declares: H.264 and HEVC sequence
parameter sets, the AV1 sequence header.

A decoder reads the size from the parameter sets itself; we need it for what we say about a
stream (the sample entry and ``tkhd``, HLS ``RESOLUTION``, the producer's view of an input).
So the reading is best effort: a record we cannot follow gives ``(0, 0)``, never an error.
"""

from __future__ import annotations

_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
# (SubWidthC, SubHeightC) by chroma_format_idc: monochrome, 4:2:0, 4:2:2, 4:4:4.
_SUBSAMPLING = ((1, 1), (2, 2), (2, 1), (1, 1))


class _Exhausted(Exception):
    """The bits ran out: the record is not one we can follow."""


class _Bits:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, count: int) -> int:
        value = 0
        for _ in range(count):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise _Exhausted
            value = value << 1 | (self.data[byte] >> (7 - (self.pos & 7)) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise _Exhausted
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _unescape(nal: bytes) -> bytes:
    """The RBSP of a NAL unit: emulation prevention bytes (``00 00 03``) removed."""
    return nal.replace(b"\0\0\3", b"\0\0")


def picture_size(codec: str, record: bytes) -> tuple[int, int]:
    """Width and height from an ``avcC``, ``hvcC`` or ``av1C`` body; ``(0, 0)`` if unknown."""
    try:
        if codec == "avc1":
            return _avc(record)
        if codec == "hvc1":
            return _hevc(record)
        if codec == "av01":
            return _av1(record)
    except (_Exhausted, IndexError):
        pass
    return 0, 0


def _avc(record: bytes) -> tuple[int, int]:
    if record[5] & 0x1F == 0:
        return 0, 0
    size = int.from_bytes(record[6:8], "big")
    bits = _Bits(_unescape(record[8 + 1 : 8 + size]))  # after the NAL header byte
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in _HIGH_PROFILES:
        chroma = bits.ue()
        if chroma == 3:
            bits.u(1)  # separate_colour_plane_flag
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma != 3 else 12):
                if bits.u(1):
                    last = next_scale = 8
                    for _ in range(16 if index < 6 else 64):
                        if next_scale:
                            next_scale = (last + bits.se()) % 256
                        last = next_scale or last
    bits.ue()  # log2_max_frame_num_minus4
    order_type = bits.ue()
    if order_type == 0:
        bits.ue()
    elif order_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs, height_units = bits.ue() + 1, bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue()) if bits.u(1) else (0, 0, 0, 0)
    sub_width, sub_height = _SUBSAMPLING[chroma] if chroma < 4 else (1, 1)
    unit_x = 1 if chroma == 0 else sub_width
    unit_y = (2 - frame_mbs_only) * (1 if chroma == 0 else sub_height)
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (crop[2] + crop[3])
    return max(width, 0), max(height, 0)


def _hevc(record: bytes) -> tuple[int, int]:
    pos, arrays = 23, record[22]
    for _ in range(arrays):
        nal_type, count = record[pos] & 0x3F, int.from_bytes(record[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            size = int.from_bytes(record[pos : pos + 2], "big")
            if nal_type == 33:  # SPS_NUT
                return _hevc_sps(_unescape(record[pos + 2 + 2 : pos + 2 + size]))
            pos += 2 + size
    return 0, 0


def _hevc_sps(rbsp: bytes) -> tuple[int, int]:
    bits = _Bits(rbsp)
    bits.u(4)  # sps_video_parameter_set_id
    sub_layers = bits.u(3)
    bits.u(1)  # sps_temporal_id_nesting_flag
    bits.u(96)  # general profile, tier and level
    present = [(bits.u(1), bits.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.u(2 * (8 - sub_layers))
    for profile, level in present:
        bits.u(88 * profile + 8 * level)
    bits.ue()  # sps_seq_parameter_set_id
    chroma = bits.ue()
    if chroma == 3:
        bits.u(1)
    width, height = bits.ue(), bits.ue()
    if bits.u(1):  # conformance_window_flag
        sub_width, sub_height = _SUBSAMPLING[chroma] if chroma < 4 else (1, 1)
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        width -= sub_width * (left + right)
        height -= sub_height * (top + bottom)
    return max(width, 0), max(height, 0)


def _av1(record: bytes) -> tuple[int, int]:
    pos = 4  # configOBUs follow the 4-byte header
    while pos < len(record):
        header = record[pos]
        obu_type, extension, has_size = header >> 3 & 0xF, header >> 2 & 1, header >> 1 & 1
        pos += 1 + extension
        if not has_size:
            return _av1_sequence(record[pos:]) if obu_type == 1 else (0, 0)
        size = shift = 0
        for _ in range(8):
            byte = record[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if obu_type == 1:  # OBU_SEQUENCE_HEADER
            return _av1_sequence(record[pos : pos + size])
        pos += size
    return 0, 0


def _av1_sequence(data: bytes) -> tuple[int, int]:
    bits = _Bits(data)
    bits.u(3)  # seq_profile
    bits.u(1)  # still_picture
    if bits.u(1):  # reduced_still_picture_header
        bits.u(5)
    else:
        decoder_model = False
        delay_length = 0
        if bits.u(1):  # timing_info_present_flag
            bits.u(64)
            if bits.u(1):  # equal_picture_interval: num_ticks_per_picture_minus_1 as uvlc
                zeros = 0
                while not bits.u(1):
                    zeros += 1
                    if zeros > 31:
                        raise _Exhausted
                bits.u(zeros)
            decoder_model = bool(bits.u(1))
            if decoder_model:
                delay_length = bits.u(5) + 1
                bits.u(32 + 5 + 5)
        display_delay = bits.u(1)
        for _ in range(bits.u(5) + 1):
            bits.u(12)  # operating_point_idc
            if bits.u(5) > 7:  # seq_level_idx
                bits.u(1)
            if decoder_model and bits.u(1):
                bits.u(2 * delay_length + 1)
            if display_delay and bits.u(1):
                bits.u(4)
    width_bits, height_bits = bits.u(4) + 1, bits.u(4) + 1
    return bits.u(width_bits) + 1, bits.u(height_bits) + 1
