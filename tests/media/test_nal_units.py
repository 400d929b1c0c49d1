"""NAL units (server/media/nal_units.py): Annex B split, and the configuration records built
from a TS stream's parameter sets compared with the ones ffmpeg writes into MP4."""

from __future__ import annotations

import pytest

from server.errors import MediaError
from server.media.mpegts import TsDemuxer
from server.media.nal_units import (
    AVC_PPS,
    AVC_SPS,
    HEVC_PPS,
    HEVC_SPS,
    HEVC_VPS,
    Codec,
    avc_config,
    hevc_config,
    length_prefixed,
    nal_type,
    parameter_set_id,
    split_annex_b,
)
from tests.media.media_files import encoded
from tests.media.ts_files import ts, ts_path


def test_split_annex_b_takes_3_and_4_byte_start_codes_and_drops_trailing_zeros() -> None:
    stream = b"\0\0\0\1\x09\xf0" + b"\0\0\1\x67\1\2\0\0" + b"\0\0\0\1\x65\0\0\3\1\xff\0"
    assert split_annex_b(stream) == [b"\x09\xf0", b"\x67\1\2", b"\x65\0\0\3\1\xff"]
    assert split_annex_b(b"no start code") == []
    assert length_prefixed([b"\x09\xf0", b"\x65"]) == b"\0\0\0\2\x09\xf0\0\0\0\1\x65"


def parameter_sets(name: str, codec: Codec, kinds: tuple[int, ...]) -> list[list[bytes]]:
    first = TsDemuxer().feed(ts(name))[0]
    units = split_annex_b(first.data)
    return [[u for u in units if nal_type(codec, u) == kind] for kind in kinds]


def ffmpeg_record(name: str, box: bytes) -> bytes:
    """The configuration record ffmpeg writes when it copies the TS stream into MP4."""
    mp4 = encoded(f"nal_{name}", ["-i", str(ts_path(name)), "-map", "0:v", "-c", "copy"], "mp4").read_bytes()
    at = mp4.index(box)
    size = int.from_bytes(mp4[at - 4 : at], "big")
    return mp4[at + 4 : at - 4 + size]


def test_the_avc_record_is_ffmpegs() -> None:
    sps, pps = parameter_sets("h264_only", Codec.H264, (AVC_SPS, AVC_PPS))
    assert len(sps) == len(pps) == 1
    assert avc_config(sps, pps) == ffmpeg_record("h264_only", b"avcC")
    assert parameter_set_id(Codec.H264, sps[0]) == parameter_set_id(Codec.H264, pps[0]) == 0


def test_the_hevc_record_is_ffmpegs_but_for_array_completeness() -> None:
    vps, sps, pps = parameter_sets("hevc_aac", Codec.HEVC, (HEVC_VPS, HEVC_SPS, HEVC_PPS))
    ours, theirs = hevc_config(vps, sps, pps), ffmpeg_record("hevc_aac", b"hvcC")
    # ffmpeg leaves array_completeness 0; ours is 1, as hvc1 requires (the samples hold no
    # parameter sets): the same record otherwise.
    arrays = [23, 23 + 3 + 2 + len(vps[0]), 23 + 6 + 4 + len(vps[0]) + len(sps[0])]
    assert [ours[at] for at in arrays] == [0xA0, 0xA1, 0xA2]
    assert bytes(b & 0x7F if at in arrays else b for at, b in enumerate(ours)) == theirs
    assert [parameter_set_id(Codec.HEVC, unit) for unit in (*vps, *sps, *pps)] == [0, 0, 0]


def test_a_cut_sps_is_bad_config() -> None:
    vps, sps, pps = parameter_sets("hevc_aac", Codec.HEVC, (HEVC_VPS, HEVC_SPS, HEVC_PPS))
    with pytest.raises(MediaError) as info:
        hevc_config(vps, [sps[0][:10]], pps)
    assert info.value.code == "media.bad_config"
    with pytest.raises(MediaError) as info:
        avc_config([], [b"\x68"])
    assert info.value.code == "media.bad_config"
    with pytest.raises(MediaError) as info:
        parameter_set_id(Codec.H264, b"\x68\x00")  # an Exp-Golomb code that never ends
    assert info.value.code == "media.bad_config"
