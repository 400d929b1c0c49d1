"""The MPEG-TS demuxer (server/media/mpegts.py): ffmpeg's TS in any chunking gives PyAV's
frames at PyAV's times; losses, garbage and wraps are survived and counted; malformed or
oversized input is a MediaError."""

from __future__ import annotations

import contextlib
import io

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import MediaError
from server.media.mpegts import AAC_ADTS, H264, DemuxState, PesPacket, TsDemuxer
from tests.media.ts_files import PACKET, chunked, packets, pid, shift_times, ts

FUZZ = settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def demux(data: bytes | list[bytes], **limits: int) -> tuple[list[PesPacket], TsDemuxer]:
    demuxer = TsDemuxer(**limits)
    out: list[PesPacket] = []
    for chunk in [data] if isinstance(data, bytes) else data:
        out += demuxer.feed(chunk)
    return out + demuxer.close(), demuxer


def pyav_packets(data: bytes) -> dict[str, list[tuple[int, int]]]:
    """PyAV's (pts, dts) per packet by stream type, in 90 kHz ticks."""
    found: dict[str, list[tuple[int, int]]] = {}
    with av.open(io.BytesIO(data), mode="r", format="mpegts") as container:
        for packet in container.demux():
            if packet.size and packet.pts is not None and packet.dts is not None:
                found.setdefault(packet.stream.type, []).append((packet.pts, packet.dts))
    return found


def adts_frames(data: bytes) -> int:
    count, pos = 0, 0
    while pos + 7 <= len(data):
        assert data[pos] == 0xFF and data[pos + 1] & 0xF6 == 0xF0
        pos += (data[pos + 3] & 0x3) << 11 | data[pos + 4] << 3 | data[pos + 5] >> 5
        count += 1
    return count


def kinds(found: list[PesPacket], stream_type: int) -> list[PesPacket]:
    return [p for p in found if p.stream_type == stream_type]


def test_pes_packets_are_pyavs_frames_at_pyavs_times() -> None:
    data = ts("h264_aac_bframes")
    found, demuxer = demux(data)
    source = pyav_packets(data)
    video, audio = kinds(found, H264), kinds(found, AAC_ADTS)
    assert [(p.pts, p.dts) for p in video] == source["video"]
    assert sum(adts_frames(p.data) for p in audio) == len(source["audio"])
    assert {p.pts for p in audio} <= {pts for pts, _ in source["audio"]}
    assert all(p.program == frozenset({H264, AAC_ADTS}) for p in found)
    assert [p.random_access for p in video].count(True) == 2  # one keyframe a second
    assert not any(p.discontinuity for p in found)
    assert sorted(demuxer.streams.values()) == [AAC_ADTS, H264]
    assert demuxer.warnings == {}


@FUZZ
@given(st.integers(0, 2**32), st.integers(1, 1000))
def test_any_chunking_gives_the_same_packets(seed: int, largest: int) -> None:
    data = ts("h264_aac_bframes")
    whole, _ = demux(data)
    assert demux(chunked(data, seed, largest))[0] == whole


def test_garbage_between_packets_is_skipped_and_counted() -> None:
    data = ts("h264_only")
    whole, _ = demux(data)
    cut = 40 * PACKET
    found, demuxer = demux(data[:cut] + bytes(500) + data[cut:])
    assert found == whole
    assert demuxer.warnings["lost_sync"] == 1
    assert demuxer.warnings["skipped_bytes"] == 500


def test_garbage_alone_is_bad_ts_and_the_demuxer_stays_failed() -> None:
    demuxer = TsDemuxer(max_resync=10 * PACKET)
    assert demuxer.feed(b"GET / HTTP/1.1\r\n" * 100) == []  # 1600 bytes: skipped, still looking
    assert demuxer.state is DemuxState.SEARCHING
    with pytest.raises(MediaError) as info:
        demuxer.feed(b"GET / HTTP/1.1\r\n" * 100)
    assert info.value.code == "media.bad_ts"
    assert demuxer.state is DemuxState.FAILED
    with pytest.raises(MediaError, match="already failed"):
        demuxer.feed(ts("h264_only"))


def test_a_packet_cut_short_drops_its_pes_and_flags_the_next() -> None:
    data = ts("h264_only")
    whole, _ = demux(data)
    all_packets = packets(data)
    video_pid = next(p.pid for p in whole)
    # The middle packet of a video PES loses its last 100 bytes.
    at = next(i for i in range(200, len(all_packets)) if pid(all_packets[i]) == video_pid)
    damaged = b"".join(all_packets[:at]) + all_packets[at][:88] + b"".join(all_packets[at + 1 :])
    found, demuxer = demux(damaged)
    assert len(found) == len(whole) - 1
    assert demuxer.warnings["lost_sync"] == 1 and demuxer.warnings["cc_error"] == 1
    assert demuxer.warnings["dropped_pes"] == 1
    flagged = [i for i, p in enumerate(found) if p.discontinuity]
    assert len(flagged) == 1
    assert found[: flagged[0]] == whole[: flagged[0]]
    assert found[flagged[0] :] == [
        PesPacket(p.pid, p.stream_type, p.pts, p.dts, p.data, p.random_access, i == 0, p.program)
        for i, p in enumerate(whole[flagged[0] + 1 :])
    ]


def test_a_stream_cut_inside_a_packet_ends_with_the_last_whole_pes() -> None:
    data = ts("h264_only")
    whole, _ = demux(data)
    found, demuxer = demux(data[:-100])
    assert demuxer.warnings["truncated_packet"] == 1
    assert found[:-1] == whole[:-1]
    assert found[-1].data == whole[-1].data[: len(found[-1].data)]


def test_a_duplicated_packet_is_skipped() -> None:
    data = ts("h264_aac_bframes")
    whole, _ = demux(data)
    all_packets = packets(data)
    at = next(i for i in range(100, len(all_packets)) if pid(all_packets[i]) in {p.pid for p in whole})
    found, demuxer = demux(b"".join([*all_packets[: at + 1], all_packets[at], *all_packets[at + 1 :]]))
    assert found == whole
    assert demuxer.warnings["duplicate_packet"] == 1


def test_times_are_unwrapped_across_the_33_bit_wrap() -> None:
    data = ts("h264_aac_bframes")
    whole, _ = demux(data)
    first = whole[0].dts
    assert first is not None
    offset = 2**33 - first - 90_000  # the clock wraps a second into the stream
    found, _ = demux(shift_times(data, offset, {p.pid for p in whole}))
    assert [(p.pts, p.dts) for p in found] == [
        (None if p.pts is None else p.pts + offset, None if p.dts is None else p.dts + offset) for p in whole
    ]
    assert max(p.pts or 0 for p in found) > 2**33


def test_a_pes_over_the_limit_is_refused() -> None:
    with pytest.raises(MediaError) as info:
        demux(ts("h264_only"), max_pes_size=2000)
    assert info.value.code == "media.pes_too_large"


def test_a_declared_pes_length_over_the_limit_is_refused_from_its_header() -> None:
    data = ts("aac_only")
    all_packets = packets(data)
    audio_pid = demux(data)[0][0].pid
    first = next(i for i, p in enumerate(all_packets) if pid(p) == audio_pid)
    demuxer = TsDemuxer(max_pes_size=1000)
    for packet in all_packets[:first]:
        assert demuxer.feed(packet) == []
    with pytest.raises(MediaError) as info:
        demuxer.feed(all_packets[first])  # the PES's first packet: its header declares its length
    assert info.value.code == "media.pes_too_large"


def test_a_pes_without_a_start_code_is_bad_ts() -> None:
    data = ts("h264_only")
    whole, _ = demux(data)
    video_pid = whole[0].pid
    all_packets = packets(data)
    at = next(i for i, p in enumerate(all_packets) if pid(p) == video_pid and p[1] & 0x40)
    start = 5 + all_packets[at][4] if all_packets[at][3] & 0x20 else 4
    edited = all_packets[at][:start] + b"\xff\xff\xff" + all_packets[at][start + 3 :]
    with pytest.raises(MediaError) as info:
        demux(b"".join([*all_packets[:at], edited, *all_packets[at + 1 :]]))
    assert info.value.code == "media.bad_ts"


def test_other_streams_are_reported_once_and_skipped() -> None:
    found, demuxer = demux(ts("h264_aac_mp2"))
    assert list(demuxer.ignored.values()) == [0x03]  # MPEG-1 audio
    assert demuxer.warnings["ignored_stream"] == 1  # though every PMT repetition lists it
    assert {p.stream_type for p in found} == {H264, AAC_ADTS}


def test_a_section_with_a_bad_crc_is_ignored_until_the_next_one() -> None:
    data = ts("h264_aac_bframes")
    whole, _ = demux(data)
    all_packets = packets(data)
    pmt = next(i for i, p in enumerate(all_packets) if pid(p) and p[1] & 0x40 and p[4:6] == b"\0\2")
    edited = bytearray(all_packets[pmt])
    edited[20] ^= 0xFF
    found, demuxer = demux(b"".join([*all_packets[:pmt], bytes(edited), *all_packets[pmt + 1 :]]))
    assert demuxer.warnings["bad_crc"] == 1
    assert 0 < len(found) < len(whole)  # the streams are known from the next PMT on
    assert found == whole[len(whole) - len(found) :]


@FUZZ
@given(
    st.integers(0, 2**32),
    st.lists(st.tuples(st.integers(0, 60 * PACKET - 1), st.integers(0, 255)), max_size=8),
)
def test_mutated_streams_raise_only_media_errors(seed: int, edits: list[tuple[int, int]]) -> None:
    data = bytearray(ts("h264_aac_bframes")[: 60 * PACKET])
    for at, value in edits:
        data[at] = value
    with contextlib.suppress(MediaError):
        demux(chunked(bytes(data), seed, 700))
