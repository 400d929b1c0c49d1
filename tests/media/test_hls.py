"""The LL-HLS packager without sockets: real PyAV fragments in, playlists out."""

from __future__ import annotations

import dataclasses
import functools
import re

import pytest

from server.encoding.testpattern import PatternSettings, encode_clip
from server.media.fmp4 import split_clip
from server.media.hls import Packager
from server.media.timeline import loop_fragments
from server.media.types import InitSegment, MediaFragment
from tests.support.hls_playlist import parse_media_playlist, parse_multivariant_playlist


@functools.cache
def stream(gop: int, width: int = 160, seconds: float = 4.0) -> tuple[InitSegment, tuple[MediaFragment, ...]]:
    """A test pattern clip, 200 ms fragments, a keyframe every ``gop`` frames (25 fps)."""
    settings = PatternSettings(width=width, height=90, gop=gop, preset="ultrafast", busy=False)
    init, fragments = split_clip(encode_clip("HLS", seconds, settings))
    return init, tuple(fragments)


def feed(packager: Packager, gop: int, seconds: float, *, width: int = 160, clip: float = 4.0) -> None:
    init, fragments = stream(gop, width, clip)
    if packager.init is None or packager.init.signature() != init.signature():
        packager.set_init(init)
    count = round(seconds / 0.2)
    for index, fragment in enumerate(loop_fragments(init, fragments)):
        if index == count:
            break
        packager.add(fragment, wall_time=1_600_000_000 + index * 0.2)


def extinfs(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"#EXTINF:([\d.]+),", text)]


def test_segments_start_at_keyframes_and_every_fragment_is_a_part() -> None:
    packager = Packager(target_duration=2.0, window=6)
    feed(packager, gop=25, seconds=7.0)  # 1 s GOPs: two GOPs a segment
    text = packager.media_playlist()
    assert extinfs(text) == [2.0, 2.0, 2.0]
    assert all(s.parts[0].independent for s in packager.segments)
    parts = re.findall(r'#EXT-X-PART:DURATION=([\d.]+),URI="part/(\d+)\.m4s"(,INDEPENDENT=YES)?', text)
    assert len(parts) == 35 and [int(n) for _, n, _ in parts] == list(range(35))
    assert all(float(d) == 0.2 for d, _, _ in parts)
    assert [bool(i) for _, n, i in parts] == [int(n) % 5 == 0 for _, n, _ in parts]
    assert text.endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/35.m4s"\n')
    assert "#EXT-X-TARGETDURATION:2\n" in text and "PART-TARGET=0.2\n" in text
    # The segment's bytes are its parts' bytes.
    first = packager.segments[0]
    assert first.data() == b"".join(p.data for p in first.parts)


@pytest.mark.parametrize(("gop", "expected"), [(12, 0.48), (50, 2.0), (37, 1.48)])
def test_segments_never_exceed_the_target_when_the_gop_fits(gop: int, expected: float) -> None:
    packager = Packager(target_duration=2.0, window=10)
    feed(packager, gop=gop, seconds=12.0)
    durations = [round(s.duration, 3) for s in packager.segments if s.complete]
    assert durations and all(d <= 2.0 for d in durations)
    assert durations[1] == pytest.approx(expected, abs=0.01)


def test_a_gop_longer_than_the_target_raises_the_target_duration() -> None:
    packager = Packager(target_duration=2.0, window=10)
    feed(packager, gop=75, seconds=12.0, clip=6.0)  # 3 s GOPs
    text = packager.media_playlist()
    assert "#EXT-X-TARGETDURATION:3\n" in text
    assert max(extinfs(text)) == 3.0


def test_the_window_stays_bounded_and_sequences_advance() -> None:
    packager = Packager(target_duration=2.0, window=3)
    for round_ in range(20):
        feed(packager, gop=25 if round_ % 2 else 50, seconds=4.0, width=160 if round_ % 4 < 2 else 128)
        packager.discontinuity()
        complete = [s for s in packager.segments if s.complete]
        assert len(complete) <= 3
        assert len(packager.inits) <= 4  # only those still referenced, and the current one
    text = packager.media_playlist()
    sequence = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    assert sequence == packager.segments[0].msn > 0
    discontinuities = int(re.search(r"#EXT-X-DISCONTINUITY-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    removed = packager.segments[0].msn
    assert 0 < discontinuities <= removed + 1
    # Every listed segment has its map: one EXT-X-MAP at least, before the first segment.
    assert text.index("#EXT-X-MAP") < text.index("#EXTINF")


def test_switches_and_reinits_mark_discontinuities_and_maps() -> None:
    packager = Packager(target_duration=2.0, window=10)
    feed(packager, gop=25, seconds=3.0)
    packager.discontinuity()  # a switch to a source with the same decoder configuration
    feed(packager, gop=25, seconds=3.0)
    feed(packager, gop=25, seconds=3.0, width=128)  # a re-init
    text = packager.media_playlist()
    assert text.count("#EXT-X-DISCONTINUITY\n") == 2
    maps = re.findall(r'#EXT-X-MAP:URI="init/(\d+)\.mp4"', text)
    assert maps == ["1", "2"]
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:0\n" in text


def test_blocking_reload_conditions() -> None:
    packager = Packager(target_duration=2.0, window=6)
    assert not packager.has(0, 0)
    feed(packager, gop=25, seconds=2.4)  # segment 0 complete (2 s), segment 1 has two parts
    assert packager.has(0) and not packager.has(1)
    assert packager.has(1, 1) and not packager.has(1, 2)
    assert packager.has(0, 9)  # a later part exists: "or later"
    assert not packager.too_far(3) and packager.too_far(4)


def test_delta_updates_skip_what_is_older_than_can_skip_until() -> None:
    packager = Packager(target_duration=2.0, window=12)
    feed(packager, gop=25, seconds=22.0)
    full = packager.media_playlist()
    delta = packager.media_playlist(skip=True)
    skipped = int(re.search(r"#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)", delta).group(1))  # type: ignore[union-attr]
    assert "CAN-SKIP-UNTIL=12" in full
    # 10 complete segments of 2 s (+ parts): those ending more than 12 s before the end go.
    assert skipped == len(extinfs(full)) - len(extinfs(delta)) and skipped == 4
    assert delta.count("#EXT-X-PART:") == full.count("#EXT-X-PART:") - 4 * 10


def test_query_and_prefix_reach_every_uri() -> None:
    packager = Packager(prefix="e1/")
    feed(packager, gop=25, seconds=2.4)
    text = packager.media_playlist(query="sid=abc&token=t")
    uris = re.findall(r'URI="([^"]+)"', text) + [
        line for line in text.splitlines() if line.startswith("e1/seg")
    ]
    assert uris and all(u.startswith("e1/") and u.endswith("?sid=abc&token=t") for u in uris)
    # Rendered once, each player's query put in: another player's playlist names its own.
    other = packager.media_playlist(query="sid=xyz")
    assert other == text.replace("sid=abc&token=t", "sid=xyz") and "\x00" not in other
    assert packager.media_playlist() == text.replace("?sid=abc&token=t", "")
    variant = packager.multivariant_playlist(query="sid=abc")
    assert 'CODECS="avc1.' in variant and "RESOLUTION=160x90" in variant
    assert variant.rstrip().endswith("media.m3u8?sid=abc")


@pytest.mark.parametrize("window", [6, 12])
def test_ten_minutes_of_playlists_are_valid_and_bounded(window: int) -> None:
    """Ten minutes of program on a fast clock, a switch every 20 s and a re-init every 40 s:
    every full and delta playlist passes the strict RFC 8216bis parser, the window holds."""
    packager = Packager(target_duration=2.0, window=window, prefix="e/")
    widths = [160, 128]
    deltas_with_skip = 0
    for minute_part in range(30):  # 30 x 20 s
        if minute_part:
            packager.discontinuity()
        feed(packager, gop=25, seconds=20.0, width=widths[(minute_part // 2) % 2])
        full = parse_media_playlist(packager.media_playlist(query="sid=x"))
        delta = parse_media_playlist(packager.media_playlist(query="sid=x", skip=True))
        assert full.warnings == [] and len(full.segments) <= window
        assert full.segments[-1].media_sequence == delta.segments[-1].media_sequence
        deltas_with_skip += bool(delta.skipped_segments)
        assert len(packager.inits) <= 3
        variant = parse_multivariant_playlist(packager.multivariant_playlist(query="sid=x"))
        assert variant.variants[0].resolution == (widths[(minute_part // 2) % 2], 90)
    assert full.media_sequence > 250
    # With 6 segments of 2 s nothing is older than CAN-SKIP-UNTIL (12 s); with 12 there is.
    assert (deltas_with_skip > 0) == (window == 12)


def test_program_date_time_runs_on_within_a_source_and_reanchors_at_a_switch() -> None:
    packager = Packager(target_duration=2.0, window=10)
    init, fragments = stream(25)
    packager.set_init(init)
    clock = 1_600_000_000.0
    for index, fragment in enumerate(fragments[:15]):  # 3 s: segment 0 complete, 1 open
        unstamped = dataclasses.replace(fragment, producer_time=None)  # dated by arrival
        packager.add(unstamped, wall_time=clock + index * 0.2 + 0.05 * (index % 3))  # jittery
    first, second = packager.segments[0], packager.segments[1]
    assert second.date == first.date + first.duration  # continuous: no jitter
    # A switch to a source whose clock is 5 s behind: back by at most 0.5 s, not 5.
    packager.discontinuity()
    behind = dataclasses.replace(fragments[0], producer_time=clock - 5)
    packager.add(behind, wall_time=clock + 3)
    third = packager.segments[2]
    assert third.discontinuity and third.date == second.date + second.duration - 0.5
    # A switch to a source well ahead (the program had fallen behind): the date follows it.
    packager.discontinuity()
    ahead = dataclasses.replace(fragments[0], producer_time=clock + 30)
    packager.add(ahead, wall_time=clock + 3.2)
    assert packager.segments[3].date == clock + 30


def test_a_gop_that_is_not_a_whole_number_of_parts_ends_segments_at_its_short_part() -> None:
    """12-frame GOPs in 200 ms fragments: 0.2, 0.2, 0.08 s. The short part may only be a
    segment's last (RFC 8216bis 4.4.4.9), so each GOP is a segment; playlists stay valid."""
    packager = Packager(target_duration=2.0, window=6)
    feed(packager, gop=12, seconds=12.0)
    playlist = parse_media_playlist(packager.media_playlist())
    assert playlist.warnings == []
    durations = [round(s.duration, 2) for s in playlist.segments]
    # One GOP each; where the 4 s clip loops, its 0.16 s tail GOP joins the next one.
    assert set(durations) <= {0.48, 0.64} and durations.count(0.48) >= 4
