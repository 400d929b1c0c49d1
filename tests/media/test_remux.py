"""The FLV remuxer (server/media/flv_remux.py, server/media/fmp4_build.py): ffmpeg's FLV in, our
init segments and fragments out; ffmpeg decodes the result with no error, PyAV finds the
source's frames at the source's times, and our own fMP4 parser accepts it."""

from __future__ import annotations

import contextlib
import io
import itertools
import struct
import subprocess

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import MediaError
from server.media.flv import FlvReader, FlvTag, TagKind
from server.media.flv_remux import AUDIO_TRACK, VIDEO_TIMESCALE, VIDEO_TRACK, Remuxer
from server.media.fmp4 import Fmp4Parser, split_clip
from server.media.picture_size import picture_size
from server.media.switcher import Emit, Reinit, Switched, Switcher
from server.media.types import InitSegment, MediaFragment, TrackKind
from tests.media.flv_files import flv, frames, needs
from tests.media.media_files import decode_errors, ffmpeg, stream

FUZZ = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
Item = InitSegment | MediaFragment


def tags(name: str) -> list[FlvTag]:
    reader = FlvReader()
    found = reader.feed(flv(name))
    reader.close()
    return found


def remux(source: list[FlvTag], **options: int) -> list[Item]:
    remuxer = Remuxer(**options)
    items: list[Item] = []
    for tag in source:
        items += remuxer.feed(tag.kind, tag.timestamp, tag.payload)
    return items + remuxer.end()


def as_file(items: list[Item]) -> bytes:
    return b"".join(item.data for item in items)


DECODED = ["h264_aac_bframes", "h264_only", "h264_aac_short_gop", "hevc_opus", "av1_only", "aac_only"]


@pytest.mark.parametrize("name", DECODED)
def test_remuxed_streams_decode_and_keep_the_source_times(name: str) -> None:
    items = remux(tags(name))
    assert isinstance(items[0], InitSegment)
    assert not any(isinstance(item, InitSegment) for item in items[1:])
    data = as_file(items)
    assert decode_errors(data) == ""
    source, result = frames(flv(name), "flv"), frames(data, "mp4")
    assert set(result) == set(source)
    for kind in source:
        assert len(result[kind]) == len(source[kind]), kind
    # Video: the same decode and presentation times (FLV milliseconds, 90 kHz here: exact).
    tick = 1 / VIDEO_TIMESCALE
    if "video" not in source:
        return
    assert [f.dts for f in result["video"]] == pytest.approx([f.dts for f in source["video"]], abs=tick)
    assert [f.pts for f in result["video"]] == pytest.approx([f.pts for f in source["video"]], abs=tick)
    assert [f.keyframe for f in result["video"]] == [f.keyframe for f in source["video"]]
    if "audio" in source:  # audio counted by samples: within a millisecond of FLV's rounded times
        assert [f.dts for f in result["audio"]] == pytest.approx([f.dts for f in source["audio"]], abs=0.0011)


@pytest.mark.parametrize("name", ["h264_aac_bframes", "h264_aac_short_gop", "hevc_opus", "av1_only"])
def test_fragments_start_at_keyframes_and_last_about_fragment_ms(name: str) -> None:
    items = remux(tags(name), fragment_ms=200)
    init, fragments = items[0], items[1:]
    assert isinstance(init, InitSegment)
    keyframes = {round(f.dts * VIDEO_TIMESCALE) for f in frames(flv(name), "flv")["video"] if f.keyframe}
    starts = set()
    next_time: dict[int, int] = {}
    for fragment in fragments:
        assert isinstance(fragment, MediaFragment)
        video = fragment.track(VIDEO_TRACK)
        assert video is not None and video.duration <= 240 * 90  # 200 ms, plus a frame at 25 fps
        starts.add(video.base_decode_time)
        assert fragment.keyframe == (video.base_decode_time in keyframes)
        for track in fragment.tracks:  # decode times continue exactly from fragment to fragment
            assert next_time.get(track.track_id, track.base_decode_time) == track.base_decode_time
            next_time[track.track_id] = track.base_decode_time + track.duration
    assert keyframes <= starts  # every keyframe starts a fragment
    assert fragments[0].keyframe
    for fragment, following in itertools.pairwise(fragments):  # cut early only for a keyframe
        video = fragment.track(VIDEO_TRACK)
        assert video is not None and (following.keyframe or video.duration >= 200 * 90)
    if init.track(AUDIO_TRACK) is None:
        return
    # Audio and video of a fragment cover the same span, within an audio frame.
    for fragment in fragments[1:-1]:
        video, audio = fragment.track(VIDEO_TRACK), fragment.track(AUDIO_TRACK)
        assert video is not None and audio is not None
        audio_track = init.track(AUDIO_TRACK)
        assert audio_track is not None
        rate = audio_track.timescale
        assert (
            abs(audio.base_decode_time / rate - video.base_decode_time / VIDEO_TIMESCALE)
            < 1024 / rate + 0.001
        )


@pytest.mark.parametrize("name", DECODED)
def test_our_fmp4_parser_reads_what_the_remuxer_writes(name: str) -> None:
    items = remux(tags(name))
    parser = Fmp4Parser()
    parsed = parser.feed(as_file(items))
    parser.close()
    assert len(parsed) == len(items)
    for ours, theirs in zip(items, parsed, strict=True):
        assert type(ours) is type(theirs)
        if isinstance(ours, InitSegment):
            assert isinstance(theirs, InitSegment)
            assert ours.signature() == theirs.signature() and ours.mime == theirs.mime
        else:
            assert ours == theirs


@pytest.mark.parametrize(
    ("name", "size"),
    [("h264_aac_bframes", (320, 240)), ("h264_aac_small", (160, 120)), ("h264_odd_size", (330, 200)),
     ("hevc_opus", (320, 240)), ("av1_only", (320, 240))],
)  # fmt: skip
def test_the_init_states_the_picture_size(name: str, size: tuple[int, int]) -> None:
    init = remux(tags(name))[0]
    assert isinstance(init, InitSegment)
    video = init.video
    assert video is not None and (video.width, video.height) == size
    result = frames(as_file(remux(tags(name))), "mp4")
    assert result["video"]


@FUZZ
@given(st.sampled_from(["avc1", "hvc1", "av01"]), st.binary(max_size=64))
def test_picture_size_of_garbage_is_unknown_not_an_error(codec: str, record: bytes) -> None:
    width, height = picture_size(codec, record)
    assert width >= 0 and height >= 0


def test_audio_alone_is_cut_every_fragment_ms() -> None:
    items = remux(tags("aac_only"), fragment_ms=200)
    fragments = [item for item in items if isinstance(item, MediaFragment)]
    assert all(f.keyframe and len(f.tracks) == 1 for f in fragments)
    durations = [f.tracks[0].duration / 44100 for f in fragments[:-1]]
    assert all(0.2 <= d < 0.2 + 1024 / 44100 for d in durations), durations


def test_stalled_video_timestamps_are_bounded_by_max_pending() -> None:
    video = [t for t in tags("h264_only") if t.kind is TagKind.VIDEO]
    remuxer = Remuxer(max_pending=20_000)
    items: list[Item] = []
    for tag in video:
        items += remuxer.feed(tag.kind, 0, tag.payload)  # every frame at 0 ms
    fragments = [item for item in items if isinstance(item, MediaFragment)]
    assert len(fragments) > 3
    assert all(len(f.data) < 20_000 + 10_000 for f in fragments)


def test_codecs_in_the_init() -> None:
    mimes = {name: remux(tags(name))[0] for name in ("h264_aac_bframes", "h264_only", "hevc_opus")}
    assert mimes["h264_aac_bframes"].mime.startswith('video/mp4; codecs="avc1.64')
    assert mimes["h264_aac_bframes"].mime.endswith(',mp4a.40.2"')
    assert (
        mimes["h264_only"].mime.startswith('video/mp4; codecs="avc1.64')
        and "mp4a" not in mimes["h264_only"].mime
    )
    assert mimes["hevc_opus"].mime.startswith('video/mp4; codecs="hvc1.1.') and mimes[
        "hevc_opus"
    ].mime.endswith(',opus"')
    init = mimes["h264_aac_bframes"]
    audio = init.track(AUDIO_TRACK)
    assert audio is not None and (audio.timescale, audio.sample_rate) == (44100, 44100)


def test_enhanced_hevc_rewritten_with_codedframesx_and_modex_still_decodes() -> None:
    """An Enhanced RTMP stream as OBS might send it: frames without composition offset as
    CodedFramesX, every frame behind a ModEx nanosecond-offset prefix."""
    rewritten = []
    for tag in tags("hevc_opus"):
        payload = tag.payload
        if tag.kind is TagKind.VIDEO and payload[0] & 0x0F == 1:
            first = payload[0] & 0xF0
            if payload[5:8] == b"\0\0\0":
                body = bytes([first | 3]) + payload[1:5] + payload[8:]  # CodedFramesX
                inner = 3
            else:
                body, inner = payload, 1
            payload = bytes([first | 7, 2, 0, 0, 7, inner]) + body[1:]
        rewritten.append(FlvTag(tag.kind, tag.timestamp, payload))
    items = remux(rewritten)
    assert decode_errors(as_file(items)) == ""
    assert frames(as_file(items), "mp4")["video"] == frames(as_file(remux(tags("hevc_opus"))), "mp4")["video"]


def test_a_new_sequence_header_makes_a_new_init_and_the_same_one_nothing() -> None:
    first, second = tags("h264_aac_bframes"), tags("h264_aac_small")
    end = max(t.timestamp for t in first) + 40
    headers = [t for t in first if t.kind is not TagKind.SCRIPT and t.payload[1] == 0][:2]
    repeat = [FlvTag(t.kind, end - 40, t.payload) for t in headers]  # the same configuration again
    later = [FlvTag(t.kind, t.timestamp + end, t.payload) for t in second if t.kind is not TagKind.SCRIPT]
    items = remux([*first, *repeat, *later])
    inits = [i for i, item in enumerate(items) if isinstance(item, InitSegment)]
    assert len(inits) == 2
    assert items[inits[1] + 1].keyframe  # the new configuration starts with its keyframe
    assert decode_errors(as_file(items[: inits[1]])) == ""
    assert decode_errors(as_file(items[inits[1] :])) == ""
    before, after = items[0], items[inits[1]]
    assert isinstance(before, InitSegment) and isinstance(after, InitSegment)
    assert before.signature() != after.signature()


def test_a_frame_before_its_sequence_header_is_refused() -> None:
    video = [t for t in tags("h264_only") if t.kind is TagKind.VIDEO]
    remuxer = Remuxer()
    with pytest.raises(MediaError) as info:
        remuxer.feed(TagKind.VIDEO, video[1].timestamp, video[1].payload)
    assert info.value.code == "media.frame_before_config"
    with pytest.raises(MediaError):
        remuxer.feed(TagKind.VIDEO, video[0].timestamp, video[0].payload)  # failed for good
    audio = [t for t in tags("h264_aac_bframes") if t.kind is TagKind.AUDIO]
    with pytest.raises(MediaError) as info:
        Remuxer().feed(TagKind.AUDIO, 0, audio[1].payload)
    assert info.value.code == "media.frame_before_config"


def test_audio_time_is_counted_in_samples_and_reanchored_on_gaps() -> None:
    audio = [t for t in tags("h264_aac_bframes") if t.kind is TagKind.AUDIO]
    config, frame = audio[0].payload, audio[1].payload
    remuxer = Remuxer(fragment_ms=1000)
    remuxer.feed(TagKind.AUDIO, 0, config)
    items: list[Item] = []
    # 300 frames at 44.1 kHz, FLV times rounded to milliseconds, then a 500 ms gap.
    times = [round(i * 1024 * 1000 / 44100) for i in range(300)]
    times += [times[-1] + 500 + round(i * 1024 * 1000 / 44100) for i in range(50)]
    for ms in times:
        items += remuxer.feed(TagKind.AUDIO, ms, frame)
    items += remuxer.end()
    fragments = [item for item in items if isinstance(item, MediaFragment)]
    decode_times = [f.tracks[0].base_decode_time for f in fragments]
    # Before the gap every fragment starts on a whole count of frames: no drift.
    assert all(t % 1024 == 0 for t in decode_times if t < 300 * 1024)
    assert remuxer.warnings["audio_gap"] == 1
    assert decode_times[-1] >= (times[300] * 44100) // 1000


@FUZZ
@given(st.data())
def test_mutated_tags_raise_only_our_errors(data: st.DataObject) -> None:
    source = [t for t in tags("h264_aac_short_gop") if t.kind is not TagKind.SCRIPT][:30]
    index = data.draw(st.integers(min_value=0, max_value=len(source) - 1))
    tag = source[index]
    payload = bytearray(tag.payload[: data.draw(st.integers(min_value=0, max_value=len(tag.payload)))])
    for _ in range(data.draw(st.integers(min_value=0, max_value=4))):
        if payload:
            payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    mutated = [*source[:index], FlvTag(tag.kind, tag.timestamp, bytes(payload)), *source[index + 1 :]]
    with contextlib.suppress(MediaError):  # ours; anything else fails the test
        remux(mutated)


def test_av1_samples_carry_no_temporal_delimiter() -> None:
    for item in remux(tags("av1_only"))[1:]:
        moof_size = int.from_bytes(item.data[:4], "big")
        first_obu = item.data[moof_size + 8]  # the mdat's first byte: the first video sample's
        assert first_obu >> 3 & 0xF != 2


def test_audio_goes_out_alone_when_the_video_stops() -> None:
    source = [t for t in tags("h264_aac_bframes") if t.kind is not TagKind.SCRIPT]
    cut = next(t.timestamp for t in source if t.timestamp > 1000)
    remuxer = Remuxer(fragment_ms=200)
    items: list[Item] = []
    for tag in source:
        if tag.kind is TagKind.VIDEO and tag.timestamp > cut and tag.payload[1] == 1:
            continue  # the camera froze: no more video frames
        items += remuxer.feed(tag.kind, tag.timestamp, tag.payload)
    assert remuxer.warnings["video_stalled"] > 0
    audio_only = [i for i in items if isinstance(i, MediaFragment) and i.track(VIDEO_TRACK) is None]
    assert audio_only and not any(f.keyframe for f in audio_only)
    assert sum(f.tracks[0].duration for f in audio_only) >= 44100 // 2  # the second after the freeze


def _annex_b_units(stream: bytes) -> list[bytes]:
    return [unit.lstrip(b"\0") for unit in stream.split(b"\0\0\1") if unit.strip(b"\0")]


def _hevc_config(vps: bytes, sps: bytes, pps: bytes) -> bytes:
    """An HEVCDecoderConfigurationRecord (ISO 14496-15 §8.3.3.1) for 8-bit 4:2:0, 4-byte lengths."""
    rbsp = sps.replace(b"\0\0\3", b"\0\0")
    profile_tier_level = rbsp[3:15]  # after the NAL header and the first SPS byte: 12 general bytes
    arrays = b"".join(
        bytes([0x80 | kind]) + struct.pack(">HH", 1, len(unit)) + unit
        for kind, unit in ((32, vps), (33, sps), (34, pps))
    )
    return (
        b"\x01" + profile_tier_level + b"\xf0\x00\xfc\xfd\xf8\xf8" + b"\0\0" + b"\x0f" + bytes([3]) + arrays
    )


def test_hevc_built_from_an_elementary_stream_decodes_from_its_hvcc() -> None:
    """An Enhanced RTMP stream made here, independently of ffmpeg's FLV muxer: libx265's Annex B
    access units as CodedFramesX behind our own hvcC."""
    needs("hevc_opus")
    args = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "1", "-c:v", "libx265"]
    args += ["-preset", "ultrafast", "-bf", "0", "-g", "10", "-x265-params", "aud=1:log-level=error"]
    stream = subprocess.run(
        [ffmpeg(), "-hide_banner", "-v", "error", *args, "-f", "hevc", "-"], capture_output=True, check=True
    ).stdout
    units = _annex_b_units(stream)
    kinds = [unit[0] >> 1 & 0x3F for unit in units]
    sets = {kind: unit for kind, unit in zip(kinds, units, strict=True) if kind in (32, 33, 34)}
    access_units: list[list[bytes]] = []
    for kind, unit in zip(kinds, units, strict=True):
        if kind == 35:  # an access unit delimiter starts each picture
            access_units.append([])
        elif kind not in (32, 33, 34):  # hvc1: parameter sets only in the hvcC
            access_units[-1].append(unit)
    config = _hevc_config(sets[32], sets[33], sets[34])
    remuxer = Remuxer()
    items = remuxer.feed(TagKind.VIDEO, 0, bytes([0x80 | 0x10 | 0]) + b"hvc1" + config)
    for index, access_unit in enumerate(access_units):
        keyframe = any(16 <= unit[0] >> 1 & 0x3F <= 23 for unit in access_unit)
        body = b"".join(struct.pack(">I", len(unit)) + unit for unit in access_unit)
        header = bytes([0x80 | (0x10 if keyframe else 0x20) | 3]) + b"hvc1"
        items += remuxer.feed(TagKind.VIDEO, index * 40, header + body)
    items += remuxer.end()
    data = as_file(items)
    assert decode_errors(data) == ""
    with av.open(io.BytesIO(data), format="mp4") as container:
        video = container.streams.video[0]
        assert (video.codec_context.name, video.codec_context.width, video.codec_context.height) == (
            "hevc", 320, 240,
        )  # fmt: skip
        assert video.codec_tag == "hvc1"
        assert sum(1 for packet in container.demux(video) if packet.size) == len(access_units) == 25
    init = items[0]
    assert isinstance(init, InitSegment) and init.mime.startswith('video/mp4; codecs="hvc1.1.6.L')


@FUZZ
@given(st.data())
def test_mutated_and_truncated_files_raise_only_our_errors(data: st.DataObject) -> None:
    """Bytes of a whole FLV file changed and cut, through the reader and the remuxer."""
    stream = bytearray(flv("hevc_opus" if data.draw(st.booleans()) else "h264_aac_short_gop")[:60_000])
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        stream[data.draw(st.integers(0, len(stream) - 1))] = data.draw(st.integers(0, 255))
    stream = stream[: data.draw(st.integers(min_value=0, max_value=len(stream)))]
    reader, remuxer = FlvReader(max_tag_size=2**16), Remuxer()
    with contextlib.suppress(MediaError):  # ours; anything else fails the test
        for tag in reader.feed(bytes(stream)):
            remuxer.feed(tag.kind, tag.timestamp, tag.payload)
        reader.close()
        remuxer.end()


def test_the_program_switches_between_an_rtmp_and_a_websocket_input_and_decodes() -> None:
    """The switcher takes remuxed FLV as it takes a WebSocket publisher's fMP4: takes land on
    keyframes, re-init where the configuration differs, and every program stretch decodes."""
    rtmp = remux(tags("h264_aac_bframes"))
    assert isinstance(rtmp[0], InitSegment)
    inputs: dict[str, tuple[InitSegment, list[MediaFragment]]] = {
        "rtmp": (rtmp[0], [item for item in rtmp if isinstance(item, MediaFragment)]),
        "ws": split_clip(stream("h264_aac_short_gop")),
    }
    switcher, outputs = Switcher(), []
    for name, (init, _) in inputs.items():
        outputs += switcher.source_init(name, init)
    outputs += switcher.request("rtmp")
    events = []
    for name, (init, fragments) in inputs.items():
        for fragment in fragments:
            video = init.video
            assert video is not None
            traf = fragment.track(video.id)
            assert traf is not None
            events.append((traf.base_decode_time / video.timescale, name, fragment))
    plan = {0.7: "ws", 1.3: "rtmp", 2.2: "ws"}
    for at, name, fragment in sorted(events, key=lambda e: (e[0], e[1])):
        for when in [t for t in plan if t <= at]:
            outputs += switcher.request(plan.pop(when))
        outputs += switcher.feed(name, fragment)
    switched = [o.source for o in outputs if isinstance(o, Switched)]
    assert switched == ["rtmp", "ws", "rtmp", "ws"]
    segments: list[tuple[InitSegment, list[MediaFragment]]] = []
    for index, output in enumerate(outputs):
        if isinstance(output, Reinit):
            segments.append((output.init, []))
        elif isinstance(output, Emit):
            segments[-1][1].append(output.fragment)
        elif isinstance(output, Switched):
            following = next(o for o in outputs[index:] if isinstance(o, Emit))
            assert following.source == output.source and following.fragment.keyframe
    assert len(segments) == 4  # 90 kHz and 12.8 kHz video: each take re-inits
    ends: dict[TrackKind, float] = {}
    for init, fragments in segments:
        assert fragments and decode_errors(as_file([init, *fragments])) == ""
        for fragment in fragments:
            for traf in fragment.tracks:
                track = init.track(traf.track_id)
                assert track is not None
                begin = traf.base_decode_time / track.timescale
                if track.kind in ends:  # continuous across takes, within a frame
                    assert -0.001 <= begin - ends[track.kind] <= 0.041, (track.kind, begin, ends[track.kind])
                ends[track.kind] = begin + traf.duration / track.timescale


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (TagKind.VIDEO, b"\x17\x00\0\0\0" + b"\x02\x64\x00\x0d\xff\xe1"),  # avcC version 2
        (TagKind.VIDEO, bytes([0x90]) + b"hvc1" + b"\x01" + bytes(12)),  # hvcC cut before its lengths
        (TagKind.VIDEO, bytes([0x90]) + b"av01" + b"\x01\x00\x00\x00"),  # no av1C marker
        (TagKind.AUDIO, b"\xaf\x00\x12"),  # a 1-byte AudioSpecificConfig
        (TagKind.AUDIO, b"\x90Opus" + b"OpusHead\x01"),
    ],
)
def test_an_unreadable_sequence_start_is_refused_at_once(kind: TagKind, payload: bytes) -> None:
    with pytest.raises(MediaError) as info:
        Remuxer().feed(kind, 0, payload)
    assert info.value.code == "media.bad_flv"
