"""The incremental fMP4 parser (server/media/fmp4.py, server/media/boxes.py) on real ffmpeg
streams, cross-checked with PyAV; any chunking; every malformed case has its own code."""

from __future__ import annotations

import itertools
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import MediaError
from server.media.fmp4 import Fmp4Parser, State
from server.media.types import InitSegment, MediaFragment, TrackFragment, TrackKind
from tests.media import media_files as media
from tests.media.media_files import STREAMS, Node, parse_boxes, serialize, stream

FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
VIDEO, AUDIO = TrackKind.VIDEO, TrackKind.AUDIO

H264, AAC = (VIDEO, 12800, 320, 240, 0, 0), (AUDIO, 48000, 0, 0, 48000, 1)
BOTH = 'video/mp4; codecs="avc1.64000d,mp4a.40.2"'
# name -> (MSE type, (kind, timescale, width, height, sample rate, channels) per track)
EXPECTED: dict[str, tuple[str, list[tuple[TrackKind, int, int, int, int, int]]]] = {
    "h264_aac": (BOTH, [H264, AAC]),
    "h264_aac_bframes": (BOTH, [H264, AAC]),
    "h264_aac_short_gop": (BOTH, [H264, AAC]),
    "aac_only": ('audio/mp4; codecs="mp4a.40.2"', [AAC]),
    "opus_only": ('audio/mp4; codecs="opus"', [AAC]),  # same numbers: 48 kHz mono
    "h264_only": ('video/mp4; codecs="avc1.64000d"', [H264]),
    "h264_aac_prft": (BOTH, [H264, AAC]),
}


def parse(data: bytes, **limits: int) -> tuple[InitSegment, list[MediaFragment]]:
    items = feed_all(Fmp4Parser(**limits), data)
    init, fragments = items[0], items[1:]
    assert isinstance(init, InitSegment)
    assert all(isinstance(item, MediaFragment) for item in fragments)
    return init, fragments  # type: ignore[return-value]


def feed_all(parser: Fmp4Parser, data: bytes) -> list[InitSegment | MediaFragment]:
    items = parser.feed(data)
    parser.close()
    return items


def error_code(data: bytes, **limits: int) -> str:
    parser = Fmp4Parser(**limits)
    with pytest.raises(MediaError) as info:
        feed_all(parser, data)
    assert parser.state is State.FAILED
    with pytest.raises(MediaError) as again:
        parser.feed(b"\0" * 8)
    assert again.value.code == info.value.code
    return info.value.code


def traf_of(fragment: MediaFragment, track_id: int) -> TrackFragment:
    traf = fragment.track(track_id)
    assert traf is not None
    return traf


@pytest.mark.parametrize("name", STREAMS)
def test_init_segment_describes_the_tracks(name: str) -> None:
    init, _ = parse(stream(name))
    mime, tracks = EXPECTED[name]
    assert init.mime == mime
    assert [(t.kind, t.timescale, t.width, t.height, t.sample_rate, t.channels) for t in init.tracks] == (
        tracks
    )
    assert init.data == stream(name)[: len(init.data)] and init.data[4:8] == b"ftyp"
    assert len({t.id for t in init.tracks}) == len(init.tracks)


@pytest.mark.parametrize("name", STREAMS)
def test_fragments_agree_with_pyav(name: str) -> None:
    init, fragments = parse(stream(name))
    demuxed = media.packets(media.stream_path(name))
    assert [f.sequence_number for f in fragments] == list(range(1, len(fragments) + 1))
    for track in init.tracks:
        expected = demuxed[track.kind.value]
        trafs = [traf_of(f, track.id) for f in fragments]
        first = 0
        for fragment, traf in zip(fragments, trafs, strict=True):
            assert traf.sample_count > 0 and traf.tfdt_version == 1
            # Same place on the timeline and the same first-sample sync flag as PyAV's packets.
            assert traf.base_decode_time - trafs[0].base_decode_time == expected[first].dts - expected[0].dts
            assert traf.keyframe == expected[first].keyframe
            assert fragment.data[traf.tfdt_offset + 4 : traf.tfdt_offset + 8] == b"tfdt"
            first += traf.sample_count
        assert first == len(expected)
        for before, after in itertools.pairwise(trafs):  # continuous: no gap, no overlap
            assert after.base_decode_time == before.base_decode_time + before.duration
        assert sum(t.duration for t in trafs) == sum(p.duration for p in expected)
    video = init.video
    for fragment in fragments:
        assert fragment.keyframe == (video is None or traf_of(fragment, video.id).keyframe)
        assert fragment.data[fragment.moof_offset + 4 : fragment.moof_offset + 8] == b"moof"
        assert fragment.data[fragment.mfhd_offset + 4 : fragment.mfhd_offset + 8] == b"mfhd"
    if video is not None and "-frag_duration" not in STREAMS[name]:  # one fragment per GOP
        assert len(fragments) == sum(p.keyframe for p in demuxed["video"])
        assert all(f.keyframe for f in fragments)


def test_fragments_are_cut_at_the_gop_boundaries() -> None:
    _, fragments = parse(stream("h264_aac_short_gop"))  # 12-frame GOPs, 6-frame fragments
    assert [f.keyframe for f in fragments] == [i % 2 == 0 for i in range(13)]
    assert [f.tracks[0].base_decode_time // 512 for f in fragments if f.keyframe] == list(range(0, 75, 12))


@pytest.mark.parametrize("name", STREAMS)
def test_output_is_the_input_minus_dropped_boxes(name: str) -> None:
    data = stream(name)
    init, fragments = parse(data)
    kept = b"".join(
        data[o : o + s]
        for kind, o, s in media.top_level(data)
        if kind not in {"free", "skip", "sidx", "mfra"}
    )
    assert init.data + b"".join(f.data for f in fragments) == kept
    assert "mfra" in [kind for kind, _, _ in media.top_level(data)]  # ffmpeg's trailer, dropped


def test_bframes_have_composition_offsets_and_exact_durations() -> None:
    for name, with_bframes in [("h264_aac_bframes", True), ("h264_aac", False)]:
        moof = next(node for node in parse_boxes(stream(name)) if node.type == "moof")
        flags = struct.unpack(">I", moof.find("traf")[0].first("trun").body[:4])[0]
        assert bool(flags & 0x800) == with_bframes  # sample_composition_time_offsets_present
    # Decode times ignore composition offsets: 50 frames of 512 ticks (25 fps in 1/12800).
    _, fragments = parse(stream("h264_aac_bframes"))
    expected = [(0, 25600), (25600, 25600), (51200, 25600)]
    assert [(f.tracks[0].base_decode_time, f.tracks[0].duration) for f in fragments] == expected


def test_prft_gives_the_producer_time_and_stays_in_front() -> None:
    _, fragments = parse(stream("h264_aac_prft"))
    # The prft boxes read independently: NTP seconds (since 1900) with a 32-bit fraction.
    ntp = [
        struct.unpack(">Q", n.body[8:16])[0] for n in parse_boxes(stream("h264_aac_prft")) if n.type == "prft"
    ]
    assert [f.producer_time for f in fragments] == [
        (t >> 32) - 2_208_988_800 + (t & 0xFFFFFFFF) / 2**32 for t in ntp
    ]
    assert all(f.producer_time and 1.6e9 < f.producer_time < time.time() + 1 for f in fragments)  # since 2020
    assert all(f.data[4:8] == b"prft" and f.moof_offset == 32 for f in fragments)
    assert all(f.producer_time is None for f in parse(stream("h264_aac"))[1])


@FUZZ
@given(name=st.sampled_from(sorted(STREAMS)), cuts=st.lists(st.floats(0, 1), max_size=40))
def test_any_chunking_gives_the_same_items(name: str, cuts: list[float]) -> None:
    data = stream(name)
    whole = Fmp4Parser().feed(data)
    points = sorted({0, len(data), *(int(c * len(data)) for c in cuts)})
    parser, items = Fmp4Parser(), []
    for start, end in itertools.pairwise(points):
        items += parser.feed(data[start:end])
    assert items == whole


def test_one_byte_at_a_time_with_bounded_buffering() -> None:
    data = stream("opus_only")
    largest = max(size for _, _, size in media.top_level(data))
    parser, items = Fmp4Parser(), []
    for index in range(len(data)):
        items += parser.feed(data[index : index + 1])
        assert parser.buffered <= largest
    assert items == Fmp4Parser().feed(data) and parser.state is State.EXPECT_FRAGMENT


def test_a_new_init_segment_mid_stream() -> None:
    items = Fmp4Parser().feed(stream("h264_aac") + stream("opus_only"))
    assert [i for i, item in enumerate(items) if isinstance(item, InitSegment)] == [0, 4]
    assert items[4:] == Fmp4Parser().feed(stream("opus_only"))  # its own tracks, its own timescales


def test_prefix_boxes_are_kept_and_index_boxes_dropped() -> None:
    boxes = parse_boxes(stream("h264_only"))
    styp = Node("styp", b"msdh\0\0\0\0msdhmsix")
    emsg = Node("emsg", bytes(4) + b"urn:x\0\0" + bytes(16))
    moof_at = [n.type for n in boxes].index("moof")
    boxes[moof_at:moof_at] = [styp, Node("sidx", bytes(24)), Node("free", b"pad"), emsg]
    boxes.insert(moof_at + 6, Node("mdat", b"trailing, unreferenced"))  # after the 1st fragment's mdat
    _, fragments = parse(serialize(boxes))
    _, plain = parse(stream("h264_only"))
    head = serialize([styp, emsg])
    assert fragments[0].data == head + plain[0].data and fragments[0].moof_offset == len(head)
    assert fragments[0].tracks[0].tfdt_offset == plain[0].tracks[0].tfdt_offset + len(head)
    assert fragments[1:] == plain[1:]


def test_samples_in_two_mdats() -> None:
    """The audio samples moved to a second mdat: the fragment waits for it."""
    data = stream("h264_aac")
    boxes = parse_boxes(data)
    moof = next(n for n in boxes if n.type == "moof")
    mdat = boxes[boxes.index(moof) + 1]
    audio_trun = moof.find("traf")[1].first("trun")
    split = media.data_offset(audio_trun) - len(serialize([moof])) - 8  # where the audio samples start
    media.set_data_offset(audio_trun, media.data_offset(audio_trun) + 8)  # after the second mdat's header
    at = boxes.index(mdat)
    boxes[at : at + 1] = [Node("mdat", mdat.body[:split]), Node("mdat", mdat.body[split:])]
    edited = serialize(boxes)
    parser = Fmp4Parser()
    first_mdat_end = len(serialize(boxes[: at + 1]))
    assert len(parser.feed(edited[:first_mdat_end])) == 1  # the init only: samples still missing
    assert parser.state is State.IN_FRAGMENT
    fragment = parser.feed(edited[first_mdat_end : first_mdat_end + 8 + len(mdat.body) - split])[0]
    assert isinstance(fragment, MediaFragment) and fragment.data.count(b"mdat") >= 2
    assert parse(edited)[1][1:] == parse(data)[1][1:]


def test_implicit_base_offsets_without_default_base_is_moof() -> None:
    """Without default-base-is-moof a second traf's data starts where the first one's ends."""
    edited = media.with_implicit_base(stream("h264_aac"))
    assert edited != stream("h264_aac")
    assert [f.tracks for f in parse(edited)[1]] == [f.tracks for f in parse(stream("h264_aac"))[1]]


def _init_and_boxes(name: str = "h264_aac") -> tuple[bytes, list[Node]]:
    """The init segment, and the stream's boxes to edit: ftyp, moov, then the first moof."""
    return parse(stream(name))[0].data, parse_boxes(stream(name))


def test_a_child_larger_than_its_parent_is_truncated() -> None:
    _, boxes = _init_and_boxes()
    data = serialize(boxes)
    traf_at = data.index(b"traf", data.index(b"moof")) - 4
    assert error_code(media.set_u32(data, traf_at, len(data))) == "media.truncated_box"
    # A header cut short by the end of its parent, and a field read past a box's end.
    moof = boxes[2]
    moof.children.append(Node("free", b""))
    raw = serialize(boxes)
    moof_at = raw.index(b"moof") - 4
    assert error_code(media.set_u32(raw, moof_at, len(serialize([moof])) - 4)) == "media.truncated_box"
    moof.children.pop()
    moof.first("mfhd").body = b"\0\0\0\0\0"
    assert error_code(serialize(boxes)) == "media.truncated_box"


def test_a_traf_without_tfdt() -> None:
    _, boxes = _init_and_boxes()
    traf = boxes[2].find("traf")[1]
    traf.children = [child for child in traf.children if child.type != "tfdt"]
    assert error_code(serialize(boxes)) == "media.missing_tfdt"


def test_fragments_before_the_init_segment() -> None:
    data = stream("h264_aac")
    moov_end = sum(size for _, _, size in media.top_level(data)[:2])
    assert error_code(data[moov_end:]) == "media.fragment_before_init"
    assert error_code(data[:28] + data[moov_end:]) == "media.fragment_before_init"  # ftyp, no moov
    assert error_code(data[28:]) == "media.unexpected_box"  # moov without ftyp


def test_a_box_over_the_limit_fails_on_its_header() -> None:
    init, _ = _init_and_boxes()
    for header in [struct.pack(">I4s", 17 * 2**20, b"moof"), struct.pack(">I4sQ", 1, b"mdat", 2**40)]:
        parser = Fmp4Parser(max_box_size=16 * 2**20)
        assert len(parser.feed(init)) == 1
        with pytest.raises(MediaError) as info:
            parser.feed(header)  # nothing of the body was sent, let alone buffered
        assert info.value.code == "media.box_too_large" and parser.buffered <= 16
    data = stream("h264_aac")
    largest = max(size for _, _, size in media.top_level(data))
    assert error_code(data, max_box_size=largest - 1) == "media.box_too_large"
    assert len(parse(data, max_box_size=largest)[1]) == 3
    with pytest.raises(ValueError):
        Fmp4Parser(max_box_size=10)


def test_unexpected_top_level_boxes() -> None:
    init, boxes = _init_and_boxes()
    assert error_code(init + serialize([Node("abcd", b"x" * 10)])) == "media.unexpected_box"
    assert error_code(init + serialize([Node("mdat", b"x" * 10)])) == "media.unexpected_box"
    moof_only = serialize([boxes[2], Node("abcd", b"")])
    assert error_code(init + moof_only) == "media.unexpected_box"
    assert error_code(init + serialize([Node("moov", b"")])) == "media.unexpected_box"


def test_box_sizes_that_cannot_be() -> None:
    init, _ = _init_and_boxes()
    assert error_code(init + struct.pack(">I4s", 0, b"mdat")) == "media.truncated_box"  # to end of file
    assert error_code(init + struct.pack(">I4s", 4, b"moof")) == "media.truncated_box"
    assert error_code(init + struct.pack(">I4sQ", 1, b"moof", 12)) == "media.truncated_box"


def test_trun_data_outside_the_mdat() -> None:
    _, boxes = _init_and_boxes()
    trun = boxes[2].find("traf")[1].first("trun")
    original = media.data_offset(trun)
    media.set_data_offset(trun, original + 200_000)
    assert error_code(serialize(boxes)) == "media.bad_fragment"  # found when the next box comes
    media.set_data_offset(trun, 0)  # into the moof itself
    assert error_code(serialize(boxes)) == "media.bad_fragment"
    media.set_data_offset(trun, original)
    last = [n for n in boxes if n.type == "moof"][-1].find("traf")[0].first("trun")
    media.set_data_offset(last, media.data_offset(last) + 200_000)
    assert error_code(serialize(boxes)) == "media.bad_fragment"  # the mfra came instead
    assert error_code(serialize(boxes[:-1])) == "media.truncated_box"  # close(): the stream ended waiting


def test_absolute_base_data_offsets_are_refused() -> None:
    _, boxes = _init_and_boxes()
    tfhd = boxes[2].find("traf")[0].first("tfhd")
    flags = struct.unpack(">I", tfhd.body[:4])[0] | 0x1
    tfhd.body = struct.pack(">I", flags) + tfhd.body[4:8] + bytes(8) + tfhd.body[8:]
    assert error_code(serialize(boxes)) == "media.bad_fragment"


def test_init_segments_that_cannot_be_relayed() -> None:
    for edit in ("no mvex", "no trak", "no trex", "no avcC", "zero timescale"):
        _, boxes = _init_and_boxes()
        moov = boxes[1]
        stsd = moov.first("trak").first("mdia").first("minf").first("stbl").first("stsd")
        if edit == "no mvex":
            moov.children = [c for c in moov.children if c.type != "mvex"]
        elif edit == "no trak":
            moov.children = [c for c in moov.children if c.type != "trak"]
        elif edit == "no trex":
            moov.first("mvex").children.pop()
        elif edit == "no avcC":
            stsd.body = stsd.body.replace(b"avcC", b"xxxx")
        else:
            mdhd = moov.first("trak").first("mdia").first("mdhd")
            mdhd.body = mdhd.body[:12] + bytes(4) + mdhd.body[16:]  # v0: timescale after two times
        assert error_code(serialize(boxes[:2])) == "media.bad_init", edit


NO_ARRAYS = "00" * 10  # an hvcC's fields after the level, with no parameter-set arrays

CODECS = [  # (sample entry, handler, config box, its body in hex, codec string)
    ("hvc1", "vide", "hvcC", "01 01 60000000 b00000000000 5d" + NO_ARRAYS, "hvc1.1.6.L93.B0"),
    ("hev1", "vide", "hvcC", "01 22 20000000 000000000000 99" + NO_ARRAYS, "hev1.2.4.H153"),
    ("hvc1", "vide", "hvcC", "01 41 60000000 900000000001 5d" + NO_ARRAYS, "hvc1.A1.6.L93.90.00.00.00.00.01"),
    ("vp09", "vide", "vpcC", "01000000 00 1f 80 01 01 01 0000", "vp09.00.31.08"),
    ("av01", "vide", "av1C", "81 08 40 00", "av01.0.08M.10"),
    ("mp4a", "soun", "esds", media.esds_body(0x40, "2b88"), "mp4a.40.5"),  # HE-AAC
    ("mp4a", "soun", "esds", media.esds_body(0x40, "f820"), "mp4a.40.33"),  # an escaped audio object type
    ("mp4a", "soun", "esds", media.esds_body(0x6B, ""), "mp4a.6B"),  # MP3
    ("fLaC", "soun", "", "", "flac"),
    ("wvtt", "text", "", "", "wvtt"),
]


@pytest.mark.parametrize(("kind", "handler", "config", "body", "codec"), CODECS)
def test_codec_strings(kind: str, handler: str, config: str, body: str, codec: str) -> None:
    entry = serialize([Node(config, bytes.fromhex(body))]) if config else b""
    init = Fmp4Parser().feed(
        media.with_sample_entry(parse(stream("h264_only"))[0].data, kind, handler, entry)
    )[0]
    assert isinstance(init, InitSegment)
    track = init.tracks[0]
    assert track.codec == codec
    if handler == "vide":
        assert (track.kind, track.width, track.height) == (VIDEO, 1920, 1080)
    elif handler == "soun":
        assert (track.kind, track.sample_rate, track.channels) == (AUDIO, 44100, 2)
    else:
        assert track.kind is TrackKind.OTHER


@FUZZ
@given(noise=st.binary(max_size=3000), after_init=st.booleans())
def test_random_bytes_only_raise_media_errors(noise: bytes, after_init: bool) -> None:
    parser = Fmp4Parser(max_box_size=2**16)
    try:
        feed_all(parser, (stream("aac_only")[:1000] if after_init else b"") + noise)
    except MediaError:
        assert parser.state is State.FAILED


def _structure_offsets() -> list[int]:
    """Offsets of every byte outside mdat payloads (where a mutation changes the meaning)."""
    data = stream("h264_aac_prft")[:60_000]
    return [o + i for kind, o, size in media.top_level(data) for i in range(8 if kind == "mdat" else size)]


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_streams_only_raise_media_errors(data: st.DataObject) -> None:
    source = bytearray(stream("h264_aac_prft"))
    offsets = _structure_offsets()
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.sampled_from(offsets)) % (len(source) + 1)
        end = data.draw(st.integers(at, min(at + 8, len(source))))
        source[at:end] = data.draw(st.binary(max_size=8))  # a change, an insertion or a deletion
    if data.draw(st.booleans()):
        del source[data.draw(st.integers(0, len(source))) :]
    parser = Fmp4Parser()
    try:
        feed_all(parser, bytes(source))
    except MediaError:
        assert parser.state is State.FAILED
