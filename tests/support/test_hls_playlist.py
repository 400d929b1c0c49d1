"""The strict HLS playlist parser of tests/support/hls_playlist.py: well-formed playlists (the RFC 8216bis
examples and LL-HLS playlists shaped like ours) parse with the right values, and each rule it
checks refuses a playlist breaking it, naming the problem and the line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.hls_playlist import (
    ByteRange,
    Part,
    PlaylistError,
    parse_media_playlist,
    parse_multivariant_playlist,
)

# -- well-formed playlists -----------------------------------------------------------------------

# RFC 8216bis §9.11 (Low-Latency Playlist) as printed, with a header in place of its "...".
RFC_LOW_LATENCY = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=6.00012,CAN-SKIP-UNTIL=24
#EXT-X-PART-INF:PART-TARGET=2.00004
#EXT-X-MEDIA-SEQUENCE:268
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:13:36.106Z
#EXTINF:4.00008,
fileSequence268.mp4
#EXTINF:4.00008,
fileSequence269.mp4
#EXTINF:4.00008,
fileSequence270.mp4
#EXT-X-PART:DURATION=2.00004,INDEPENDENT=YES,URI="filePart271.0.mp4"
#EXT-X-PART:DURATION=2.00004,URI="filePart271.1.mp4"
#EXTINF:4.00008,
fileSequence271.mp4
#EXT-X-PART:DURATION=2.00004,INDEPENDENT=YES,URI="filePart272.0.mp4"
#EXT-X-PART:DURATION=0.50001,URI="filePart272.1.mp4"
#EXTINF:2.50005,
fileSequence272.mp4
#EXT-X-DISCONTINUITY
#EXT-X-PART:DURATION=2.00004,INDEPENDENT=YES,URI="midRoll273.0.mp4"
#EXT-X-PART:DURATION=2.00004,URI="midRoll273.1.mp4"
#EXTINF:4.00008,
midRoll273.mp4
#EXT-X-PART:DURATION=2.00004,INDEPENDENT=YES,URI="midRoll274.0.mp4"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="midRoll274.1.mp4"
#EXT-X-RENDITION-REPORT:URI="/1M/LL-HLS.m3u8",LAST-MSN=274,LAST-PART=1
"""

RFC_SIMPLE = """\
#EXTM3U
#EXT-X-TARGETDURATION:10
#EXT-X-VERSION:3
#EXTINF:9.009,
http://media.example.com/first.ts
#EXTINF:9.009,
http://media.example.com/second.ts
#EXTINF:3.003,
http://media.example.com/third.ts
#EXT-X-ENDLIST
"""

RFC_LIVE_HTTPS = """\
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:8
#EXT-X-MEDIA-SEQUENCE:2680

#EXTINF:7.975,
https://priv.example.com/fileSequence2680.ts
#EXTINF:7.941,
https://priv.example.com/fileSequence2681.ts
#EXTINF:7.975,
https://priv.example.com/fileSequence2682.ts
"""

RFC_ENCRYPTED = """\
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA-SEQUENCE:7794
#EXT-X-TARGETDURATION:15

#EXT-X-KEY:METHOD=AES-128,URI="https://priv.example.com/key.php?r=52"

#EXTINF:2.833,
http://media.example.com/fileSequence52-A.ts
#EXTINF:15.0,
http://media.example.com/fileSequence52-B.ts
#EXTINF:13.333,
http://media.example.com/fileSequence52-C.ts

#EXT-X-KEY:METHOD=AES-128,URI="https://priv.example.com/key.php?r=53"

#EXTINF:15.0,
http://media.example.com/fileSequence53-A.ts
"""

# A stage playlist as docs/SPEC of issue 6 has it (with a 0.5 s part target to keep it short):
# a segment, a switch (discontinuity and re-init), a short segment, the parts of the segment
# being made, the preload hint of the next part and a rendition report.
HEAD = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,CAN-SKIP-UNTIL=12
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-DISCONTINUITY-SEQUENCE:3
"""
SEGMENTS = """\
#EXT-X-MAP:URI="init/1.mp4?sid=abc"
#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:00.000+00:00
#EXT-X-PART:DURATION=0.5,URI="part/0.m4s?sid=abc",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part/1.m4s?sid=abc"
#EXT-X-PART:DURATION=0.5,URI="part/2.m4s?sid=abc"
#EXT-X-PART:DURATION=0.5,URI="part/3.m4s?sid=abc"
#EXTINF:2.000,
seg/100.m4s?sid=abc
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init/2.mp4?sid=abc"
#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:02.000+00:00
#EXT-X-PART:DURATION=0.5,URI="part/4.m4s?sid=abc",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.3,URI="part/5.m4s?sid=abc"
#EXTINF:0.800,
seg/101.m4s?sid=abc
"""
EDGE = """\
#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:02.800+00:00
#EXT-X-PART:DURATION=0.5,URI="part/6.m4s?sid=abc",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.45,URI="part/7.m4s?sid=abc"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/8.m4s?sid=abc"
#EXT-X-RENDITION-REPORT:URI="../audio/media.m3u8",LAST-MSN=102,LAST-PART=1
"""
STAGE = HEAD + SEGMENTS + EDGE
ENDED = HEAD + SEGMENTS + "#EXT-X-ENDLIST\n"


def _segment(msn: int, *, parts: int = 0, date: str | None = None) -> str:
    """A 2 s segment: its date, ``parts`` parts of 0.5 s (first independent), EXTINF and URI."""
    lines = [f"#EXT-X-PROGRAM-DATE-TIME:{date}"] if date else []
    for index in range(parts):
        independent = ",INDEPENDENT=YES" if index == 0 else ""
        lines.append(f'#EXT-X-PART:DURATION=0.5,URI="part/{msn}.{index}.m4s"{independent}')
    lines += ["#EXTINF:2.000,", f"seg/{msn}.m4s"]
    return "\n".join(lines) + "\n"


def _date(second: int) -> str:
    return (datetime(2026, 5, 1, 10, tzinfo=UTC) + timedelta(seconds=second)).isoformat(
        timespec="milliseconds"
    )


# A Playlist Delta Update (_HLS_skip=YES): segments 200-203 skipped, 12 s (the Skip Boundary) kept.
DELTA_HEAD = """\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,CAN-SKIP-UNTIL=12
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:200
#EXT-X-DISCONTINUITY-SEQUENCE:7
#EXT-X-SKIP:SKIPPED-SEGMENTS=4
"""
DELTA_SEGMENTS = (
    _segment(204, date=_date(8))
    + _segment(205, date=_date(10))
    + _segment(206, date=_date(12))
    + _segment(207, date=_date(14))
    + '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init/3.mp4"\n'
    + _segment(208, parts=4, date=_date(16))
    + _segment(209, parts=4, date=_date(18))
)
DELTA_EDGE = f"""\
#EXT-X-PROGRAM-DATE-TIME:{_date(20)}
#EXT-X-PART:DURATION=0.5,URI="part/210.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/210.1.m4s"
"""
DELTA = DELTA_HEAD + DELTA_SEGMENTS + DELTA_EDGE

MULTIVARIANT = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2000000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000
media.m3u8?sid=abc
"""

RFC_MULTIVARIANT = """\
#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000
http://example.com/low.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2560000,AVERAGE-BANDWIDTH=2000000
http://example.com/mid.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=7680000,AVERAGE-BANDWIDTH=6000000
http://example.com/hi.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=65000,CODECS="mp4a.40.5"
http://example.com/audio-only.m3u8
"""

RFC_MULTIVARIANT_IFRAMES = """\
#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=1280000
low/audio-video.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI="low/iframe.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2560000
mid/audio-video.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=150000,URI="mid/iframe.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=7680000
hi/audio-video.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=550000,URI="hi/iframe.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=65000,CODECS="mp4a.40.5"
audio-only.m3u8
"""

# RFC 8216bis §9.6 with the "condensed for space" CODECS written out.
RFC_MULTIVARIANT_AUDIO = """\
#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE="en",URI="main/english-audio.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Deutsch",DEFAULT=NO,AUTOSELECT=YES,LANGUAGE="de",URI="main/german-audio.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Commentary",DEFAULT=NO,AUTOSELECT=NO,LANGUAGE="en",URI="commentary/audio-only.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="aac"
low/video-only.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2560000,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aac"
mid/video-only.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=7680000,CODECS="avc1.640028,mp4a.40.2",AUDIO="aac"
hi/video-only.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=65000,CODECS="mp4a.40.5",AUDIO="aac"
main/english-audio.m3u8
"""


def _at(second: float) -> datetime:
    return datetime(2026, 5, 1, 10, tzinfo=UTC) + timedelta(seconds=second)


def test_the_rfc_low_latency_example() -> None:
    playlist = parse_media_playlist(RFC_LOW_LATENCY)
    assert (playlist.version, playlist.target_duration, playlist.media_sequence) == (6, 4, 268)
    assert playlist.part_target == 2.00004
    assert playlist.server_control == {
        "CAN-BLOCK-RELOAD": "YES",
        "PART-HOLD-BACK": 6.00012,
        "CAN-SKIP-UNTIL": 24.0,
    }
    assert [s.media_sequence for s in playlist.segments] == [268, 269, 270, 271, 272, 273]
    assert [s.uri for s in playlist.segments][-1] == "midRoll273.mp4"
    assert [s.discontinuity for s in playlist.segments] == [False] * 5 + [True]
    assert [s.discontinuity_sequence for s in playlist.segments] == [0] * 5 + [1]
    assert [len(s.parts) for s in playlist.segments] == [0, 0, 0, 2, 2, 2]
    assert playlist.segments[4].parts == [
        Part("filePart272.0.mp4", 2.00004, independent=True, line=19),
        Part("filePart272.1.mp4", 0.50001, line=20),
    ]
    assert playlist.segments[0].program_date_time == datetime(2019, 2, 14, 2, 13, 36, 106000, tzinfo=UTC)
    assert playlist.segments[1].program_date_time is None
    assert all(s.map_uri == "init.mp4" for s in playlist.segments)
    assert [(p.uri, p.independent) for p in playlist.trailing_parts] == [("midRoll274.0.mp4", True)]
    [hint] = playlist.preload_hints
    assert (hint.type, hint.uri, hint.byterange_start, hint.byterange_length) == (
        "PART",
        "midRoll274.1.mp4",
        None,
        None,
    )
    [report] = playlist.rendition_reports
    assert (report.uri, report.last_msn, report.last_part) == ("/1M/LL-HLS.m3u8", 274, 1)
    assert (playlist.last_msn, playlist.last_part) == (274, 0)
    assert not playlist.ended
    assert playlist.skipped_segments is None
    assert playlist.warnings == []


@pytest.mark.parametrize("text", [RFC_SIMPLE, RFC_LIVE_HTTPS, RFC_ENCRYPTED], ids=["9.1", "9.2", "9.3"])
def test_the_rfc_media_playlist_examples(text: str) -> None:
    playlist = parse_media_playlist(text)
    assert playlist.version == 3
    assert all(s.title == "" for s in playlist.segments)
    assert all(round(s.duration) <= playlist.target_duration for s in playlist.segments)


def test_the_rfc_examples_values() -> None:
    simple = parse_media_playlist(RFC_SIMPLE)
    assert simple.ended and simple.duration == pytest.approx(21.021)
    assert [s.uri for s in simple.segments] == [
        "http://media.example.com/first.ts",
        "http://media.example.com/second.ts",
        "http://media.example.com/third.ts",
    ]
    live = parse_media_playlist(RFC_LIVE_HTTPS)
    assert [s.media_sequence for s in live.segments] == [2680, 2681, 2682]
    encrypted = parse_media_playlist(RFC_ENCRYPTED)
    assert [s.key_method for s in encrypted.segments] == ["AES-128"] * 4


def test_a_stage_playlist() -> None:
    playlist = parse_media_playlist(STAGE)
    assert (playlist.version, playlist.target_duration, playlist.part_target) == (6, 2, 0.5)
    assert (playlist.media_sequence, playlist.discontinuity_sequence) == (100, 3)
    assert playlist.server_control == {
        "CAN-BLOCK-RELOAD": "YES",
        "PART-HOLD-BACK": 1.5,
        "CAN-SKIP-UNTIL": 12.0,
    }
    first, second = playlist.segments
    assert (first.uri, first.duration, first.media_sequence) == ("seg/100.m4s?sid=abc", 2.0, 100)
    assert (second.uri, second.duration, second.media_sequence) == ("seg/101.m4s?sid=abc", 0.8, 101)
    assert (first.discontinuity, second.discontinuity) == (False, True)
    assert (first.discontinuity_sequence, second.discontinuity_sequence) == (3, 4)
    assert (first.map_uri, second.map_uri) == ("init/1.mp4?sid=abc", "init/2.mp4?sid=abc")
    assert (first.program_date_time, second.program_date_time) == (_at(0), _at(2))
    assert [(p.uri, p.duration, p.independent, p.gap) for p in first.parts] == [
        ("part/0.m4s?sid=abc", 0.5, True, False),
        ("part/1.m4s?sid=abc", 0.5, False, False),
        ("part/2.m4s?sid=abc", 0.5, False, False),
        ("part/3.m4s?sid=abc", 0.5, False, False),
    ]
    assert [(p.uri, p.duration, p.independent) for p in second.parts] == [
        ("part/4.m4s?sid=abc", 0.5, True),
        ("part/5.m4s?sid=abc", 0.3, False),
    ]
    assert [(p.uri, p.duration, p.independent) for p in playlist.trailing_parts] == [
        ("part/6.m4s?sid=abc", 0.5, True),
        ("part/7.m4s?sid=abc", 0.45, False),
    ]
    assert [(h.type, h.uri) for h in playlist.preload_hints] == [("PART", "part/8.m4s?sid=abc")]
    assert [(r.uri, r.last_msn, r.last_part) for r in playlist.rendition_reports] == [
        ("../audio/media.m3u8", 102, 1)
    ]
    assert (playlist.next_media_sequence, playlist.last_msn, playlist.last_part) == (102, 102, 1)
    assert playlist.duration == pytest.approx(2.8)
    assert not playlist.ended
    assert playlist.warnings == []


def test_an_ended_playlist_keeps_the_parts_of_its_segments() -> None:
    playlist = parse_media_playlist(ENDED)
    assert playlist.ended
    assert playlist.trailing_parts == [] and playlist.preload_hints == []
    assert [len(s.parts) for s in playlist.segments] == [4, 2]
    assert (playlist.last_msn, playlist.last_part) == (101, 1)


def test_a_delta_update() -> None:
    playlist = parse_media_playlist(DELTA)
    assert playlist.skipped_segments == 4
    assert playlist.version == 9
    assert [s.media_sequence for s in playlist.segments] == [204, 205, 206, 207, 208, 209]
    assert all(s.discontinuity_sequence is None for s in playlist.segments)  # the skipped tags are unknown
    assert [s.discontinuity for s in playlist.segments] == [False] * 4 + [True, False]
    assert [s.map_uri for s in playlist.segments] == [None] * 4 + ["init/3.mp4"] * 2
    assert [s.program_date_time for s in playlist.segments] == [_at(8 + 2 * i) for i in range(6)]
    assert [len(s.parts) for s in playlist.segments] == [0, 0, 0, 0, 4, 4]
    assert [p.uri for p in playlist.trailing_parts] == ["part/210.0.m4s"]
    assert (playlist.last_msn, playlist.last_part) == (210, 0)
    assert playlist.warnings == []


def test_a_delta_update_that_skipped_nothing_and_daterange_removals() -> None:
    text = DELTA.replace("#EXT-X-VERSION:9", "#EXT-X-VERSION:10").replace(
        "#EXT-X-SKIP:SKIPPED-SEGMENTS=4", '#EXT-X-SKIP:SKIPPED-SEGMENTS=0,RECENTLY-REMOVED-DATERANGES="a\tb"'
    )
    text = text.replace(
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,CAN-SKIP-UNTIL=12",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,CAN-SKIP-UNTIL=12,CAN-SKIP-DATERANGES=YES",
    )
    playlist = parse_media_playlist(text)
    assert playlist.skipped_segments == 0
    assert playlist.server_control["CAN-SKIP-DATERANGES"] == "YES"


def test_unknown_tags_comments_blank_lines_and_crlf() -> None:
    text = STAGE.replace(
        "#EXT-X-DISCONTINUITY\n",
        "# a comment\n\n#EXT-X-FUTURE-TAG:WHATEVER=1, with spaces\n#EXT-X-DISCONTINUITY\n",
    )
    text = text.replace('URI="part/1.m4s?sid=abc"', 'URI="part/1.m4s?sid=abc",X-VENDOR="x",FUTURE=2.5')
    playlist = parse_media_playlist(text.replace("\n", "\r\n"))
    assert [s.uri for s in playlist.segments] == ["seg/100.m4s?sid=abc", "seg/101.m4s?sid=abc"]
    assert playlist.segments[1].discontinuity


def test_extinf_titles_and_integer_durations() -> None:
    text = RFC_SIMPLE.replace(
        "#EXTINF:9.009,\nhttp://media.example.com/first", "#EXTINF:9,Opening: a title\nfirst"
    )
    playlist = parse_media_playlist(text)
    assert (playlist.segments[0].title, playlist.segments[0].duration) == ("Opening: a title", 9.0)


def test_durations_at_the_limits() -> None:
    # An EXTINF that rounds down to the target duration; parts of exactly PART-TARGET and 85 % of it.
    assert (
        parse_media_playlist(RFC_SIMPLE.replace("#EXTINF:3.003,", "#EXTINF:10.499,")).segments[2].duration
        == 10.499
    )
    exact = _edit(STAGE, (PART_1, PART_1.replace("0.5", "0.425")), ("#EXTINF:2.000,", "#EXTINF:1.925,"))
    assert [p.duration for p in parse_media_playlist(exact).segments[0].parts] == [0.5, 0.425, 0.5, 0.5]
    # A shorter part is refused unless independent, a gap, before a gap or the last of its segment.
    short = _edit(STAGE, (PART_1, PART_1.replace("0.5", "0.2")), ("#EXTINF:2.000,", "#EXTINF:1.700,"))
    with pytest.raises(PlaylistError, match="under 85%"):
        parse_media_playlist(short)
    gap = _edit(short, ('URI="part/2.m4s?sid=abc"', 'URI="part/2.m4s?sid=abc",GAP=YES'))
    assert [p.gap for p in parse_media_playlist(gap).segments[0].parts] == [False, False, True, False]
    independent = _edit(short, ('URI="part/1.m4s?sid=abc"', 'URI="part/1.m4s?sid=abc",INDEPENDENT=YES'))
    assert [p.independent for p in parse_media_playlist(independent).segments[0].parts] == [
        True,
        True,
        False,
        False,
    ]


def test_part_byte_ranges() -> None:
    text = SEGMENTS.replace('URI="part/0.m4s?sid=abc"', 'URI="seg/100.m4s?sid=abc",BYTERANGE="1000@0"')
    for index in (1, 2, 3):
        text = text.replace(f'URI="part/{index}.m4s?sid=abc"', 'URI="seg/100.m4s?sid=abc",BYTERANGE="1000"')
    playlist = parse_media_playlist(HEAD + text + EDGE)
    assert [p.byterange for p in playlist.segments[0].parts] == [ByteRange(1000, 0)] + [
        ByteRange(1000, None)
    ] * 3


def test_a_sub_second_date_overlap_is_allowed() -> None:
    playlist = parse_media_playlist(STAGE.replace("10:00:02.000+00:00", "10:00:01.500+00:00"))
    assert playlist.segments[1].program_date_time == _at(1.5)


def test_date_time_offsets() -> None:
    playlist = parse_media_playlist(
        STAGE.replace("2026-05-01T10:00:00.000+00:00", "2026-05-01T18:00:00.000+08:00")
    )
    date = playlist.segments[0].program_date_time
    assert date == _at(0) and date is not None and date.utcoffset() == timedelta(hours=8)
    assert date.tzinfo == timezone(timedelta(hours=8))


def test_variables() -> None:
    text = (
        STAGE.replace("#EXT-X-VERSION:6", "#EXT-X-VERSION:11")
        .replace(
            "#EXT-X-TARGETDURATION:2\n",
            '#EXT-X-TARGETDURATION:2\n#EXT-X-DEFINE:NAME="q",VALUE="sid=abc"\n#EXT-X-DEFINE:QUERYPARAM="token"\n',
        )
        .replace("?sid=abc", "?{$q}&token={$token}")
    )
    playlist = parse_media_playlist(
        text, uri="https://cdn.example.com/live/main/media.m3u8?sid=abc&token=t%2B1"
    )
    assert playlist.variables == {"q": "sid=abc", "token": "t+1"}
    assert playlist.segments[0].uri == "seg/100.m4s?sid=abc&token=t+1"
    assert playlist.segments[0].map_uri == "init/1.mp4?sid=abc&token=t+1"
    multivariant = parse_multivariant_playlist(
        MULTIVARIANT.replace(
            "#EXT-X-VERSION:6", '#EXT-X-VERSION:8\n#EXT-X-DEFINE:NAME="q",VALUE="sid=abc"'
        ).replace("media.m3u8?sid=abc", "media.m3u8?{$q}")
    )
    assert multivariant.variants[0].uri == "media.m3u8?sid=abc"
    imported = parse_media_playlist(
        STAGE.replace("#EXT-X-VERSION:6", '#EXT-X-VERSION:8\n#EXT-X-DEFINE:IMPORT="q"').replace(
            "?sid=abc", "?{$q}"
        ),
        multivariant=multivariant,
    )
    assert imported.segments[0].uri == "seg/100.m4s?sid=abc"


def test_warnings_for_what_the_draft_only_recommends() -> None:
    playlist = parse_media_playlist(
        STAGE.replace("PART-HOLD-BACK=1.5", "PART-HOLD-BACK=1.0").replace(EDGE, "")
    )
    assert len(playlist.warnings) == 2
    assert "under three times PART-TARGET" in playlist.warnings[0]
    assert "no EXT-X-PRELOAD-HINT" in playlist.warnings[1]
    multivariant = parse_multivariant_playlist(RFC_MULTIVARIANT)
    assert len(multivariant.warnings) == 3 and "without CODECS" in multivariant.warnings[0]


def test_a_stage_multivariant_playlist() -> None:
    playlist = parse_multivariant_playlist(MULTIVARIANT)
    assert playlist.version == 6 and playlist.independent_segments
    [variant] = playlist.variants
    assert variant.uri == "media.m3u8?sid=abc"
    assert (variant.bandwidth, variant.average_bandwidth) == (2_500_000, 2_000_000)
    assert variant.codecs == ["avc1.64001f", "mp4a.40.2"]
    assert variant.resolution == (1280, 720)
    assert variant.frame_rate == 30.0
    assert variant.line == 4
    assert playlist.warnings == []


def test_the_rfc_multivariant_examples() -> None:
    plain = parse_multivariant_playlist(RFC_MULTIVARIANT)
    assert [v.bandwidth for v in plain.variants] == [1280000, 2560000, 7680000, 65000]
    assert plain.variants[3].codecs == ["mp4a.40.5"]
    iframes = parse_multivariant_playlist(RFC_MULTIVARIANT_IFRAMES)
    assert [v.uri for v in iframes.iframe_variants] == [
        "low/iframe.m3u8",
        "mid/iframe.m3u8",
        "hi/iframe.m3u8",
    ]
    assert [v.uri for v in iframes.variants][-1] == "audio-only.m3u8"
    audio = parse_multivariant_playlist(RFC_MULTIVARIANT_AUDIO)
    assert [(r.name, r.default, r.language) for r in audio.renditions] == [
        ("English", True, "en"),
        ("Deutsch", False, "de"),
        ("Commentary", False, "en"),
    ]
    assert {v.audio for v in audio.variants} == {"aac"}


def test_captions_session_data_and_date_ranges() -> None:
    multivariant = parse_multivariant_playlist(
        _edit(
            MULTIVARIANT,
            ("#EXT-X-VERSION:6", "#EXT-X-VERSION:7"),
            (
                STREAM,
                '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="English",INSTREAM-ID="SERVICE1"\n'
                '#EXT-X-SESSION-DATA:DATA-ID="com.example.title",LANGUAGE="en",VALUE="Keynote"\n'
                + STREAM
                + ',CLOSED-CAPTIONS="cc"',
            ),
        )
    )
    assert multivariant.variants[0].closed_captions == "cc"
    assert [(r.type, r.attributes["INSTREAM-ID"]) for r in multivariant.renditions] == [
        ("CLOSED-CAPTIONS", "SERVICE1")
    ]
    assert multivariant.session_data == [
        {"DATA-ID": "com.example.title", "LANGUAGE": "en", "VALUE": "Keynote"}
    ]
    date_range = '#EXT-X-DATERANGE:ID="talk-1",CLASS="com.example.talk",START-DATE="2026-05-01T10:00:00.000Z"'
    media = parse_media_playlist(
        _edit(STAGE, (MAP_2, date_range + "\n" + MAP_2 + "\n" + date_range + ',DURATION=2.5,X-SPEAKER="Ada"'))
    )
    first, second = media.date_ranges
    assert (first.id, first.start_date, first.attributes["CLASS"]) == ("talk-1", _at(0), "com.example.talk")
    assert (second.attributes["DURATION"], second.attributes["X-SPEAKER"]) == (2.5, "Ada")


def test_an_error_names_its_line() -> None:
    with pytest.raises(PlaylistError) as caught:
        parse_media_playlist(STAGE.replace("DURATION=0.45,", "DURATION=0.6,"))
    error = caught.value
    assert error.line == STAGE.splitlines().index('#EXT-X-PART:DURATION=0.45,URI="part/7.m4s?sid=abc"') + 1
    assert str(error) == f"line {error.line}: {error.message}"
    assert "PART-TARGET" in error.message and "§4.4.4.9" in error.message


# -- violations ----------------------------------------------------------------------------------


def _edit(text: str, *changes: tuple[str, str]) -> str:
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _move(text: str, line: str, after: str) -> str:
    """``line`` taken out and put after the line ``after``."""
    assert line + "\n" in text and after + "\n" in text
    return text.replace(line + "\n", "", 1).replace(after + "\n", after + "\n" + line + "\n", 1)


def _line_of(text: str, line: str) -> int:
    """The number of the last line of ``text`` that is ``line``."""
    numbers = [n for n, content in enumerate(text.splitlines(), 1) if content == line]
    assert numbers, line
    return numbers[-1]


PART_1 = '#EXT-X-PART:DURATION=0.5,URI="part/1.m4s?sid=abc"'
PART_3 = '#EXT-X-PART:DURATION=0.5,URI="part/3.m4s?sid=abc"'
PART_4 = '#EXT-X-PART:DURATION=0.5,URI="part/4.m4s?sid=abc",INDEPENDENT=YES'
PART_6 = '#EXT-X-PART:DURATION=0.5,URI="part/6.m4s?sid=abc",INDEPENDENT=YES'
CONTROL = "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,CAN-SKIP-UNTIL=12"
HINT = '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/8.m4s?sid=abc"'
DATE_101 = "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:02.000+00:00"
DATE_102 = "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:02.800+00:00"
MAP_2 = '#EXT-X-MAP:URI="init/2.mp4?sid=abc"'
SKIP = "#EXT-X-SKIP:SKIPPED-SEGMENTS=4"

# (text, what the message says, the line it names: its text, a number, or None for the whole).
MEDIA_VIOLATIONS = [
    pytest.param(
        STAGE.removeprefix("#EXTM3U\n"), "first line MUST be #EXTM3U", 1, id="first-line-not-extm3u"
    ),
    pytest.param("\n" + STAGE, "first line MUST be #EXTM3U", 1, id="blank-first-line"),
    pytest.param("\ufeff" + STAGE, "Byte Order Mark", 1, id="byte-order-mark"),
    pytest.param(
        _edit(STAGE, ("#EXTINF:2.000,", "#EXTINF:2.5,")),
        "rounds to 3 s, more than EXT-X-TARGETDURATION 2",
        "#EXTINF:2.5,",
        id="extinf-over-target-duration",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-TARGETDURATION:2", "#EXT-X-TARGETDURATION:0")),
        "MUST be at least 1",
        "#EXT-X-TARGETDURATION:0",
        id="target-duration-zero",
    ),
    pytest.param(
        _edit(STAGE, (PART_3, PART_3.replace("0.5", "0.501"))),
        "is more than PART-TARGET 0.5",
        PART_3.replace("0.5", "0.501"),
        id="part-over-part-target",
    ),
    pytest.param(
        _edit(STAGE, (PART_1, PART_1.replace("0.5", "0.4"))),
        "under 85% of PART-TARGET 0.5",
        PART_1.replace("0.5", "0.4"),
        id="part-under-85-percent",
    ),
    pytest.param(
        _edit(STAGE, ("PART-HOLD-BACK=1.5", "PART-HOLD-BACK=0.9")),
        "less than twice PART-TARGET",
        CONTROL.replace("1.5", "0.9"),
        id="part-hold-back-under-twice-part-target",
    ),
    pytest.param(
        _edit(STAGE, (",PART-HOLD-BACK=1.5", "")),
        "PART-HOLD-BACK, REQUIRED",
        CONTROL.replace(",PART-HOLD-BACK=1.5", ""),
        id="part-hold-back-missing",
    ),
    pytest.param(
        _edit(STAGE, ("CAN-SKIP-UNTIL=12", "CAN-SKIP-UNTIL=11.9")),
        "less than six times the target",
        CONTROL.replace("12", "11.9"),
        id="can-skip-until-under-six-targets",
    ),
    pytest.param(
        _edit(STAGE, ("CAN-SKIP-UNTIL=12", "CAN-SKIP-UNTIL=12,HOLD-BACK=5")),
        "less than three times",
        CONTROL + ",HOLD-BACK=5",
        id="hold-back-under-three-targets",
    ),
    pytest.param(
        _edit(STAGE, (CONTROL, "#EXT-X-SERVER-CONTROL:CAN-SKIP-DATERANGES=YES,PART-HOLD-BACK=1.5")),
        "CAN-SKIP-DATERANGES without CAN-SKIP-UNTIL",
        "#EXT-X-SERVER-CONTROL:CAN-SKIP-DATERANGES=YES,PART-HOLD-BACK=1.5",
        id="can-skip-dateranges-alone",
    ),
    pytest.param(
        _edit(STAGE, (PART_1, PART_1.replace("DURATION=0.5", 'DURATION="0.5"'))),
        'DURATION="0.5" must be a decimal-floating-point',
        PART_1.replace("DURATION=0.5", 'DURATION="0.5"'),
        id="quoted-decimal-floating-point",
    ),
    pytest.param(
        _edit(STAGE, (PART_1, PART_1.replace('"part/1.m4s?sid=abc"', "part/1.m4s?sid=abc"))),
        "must be a quoted-string",
        PART_1.replace('"part/1.m4s?sid=abc"', "part/1.m4s?sid=abc"),
        id="unquoted-uri",
    ),
    pytest.param(
        _edit(STAGE, (PART_1, PART_1.replace("DURATION=0.5", "DURATION=.5"))),
        "is not a decimal-floating-point",
        PART_1.replace("DURATION=0.5", "DURATION=.5"),
        id="malformed-decimal-floating-point",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-TARGETDURATION:2", "#EXT-X-TARGETDURATION:2.0")),
        "is not a decimal-integer",
        "#EXT-X-TARGETDURATION:2.0",
        id="target-duration-not-integer",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-MEDIA-SEQUENCE:100", "#EXT-X-MEDIA-SEQUENCE:18446744073709551616")),
        "is not a decimal-integer",
        "#EXT-X-MEDIA-SEQUENCE:18446744073709551616",
        id="integer-over-2-64",
    ),
    pytest.param(
        _edit(STAGE, (PART_4, PART_4.replace("INDEPENDENT=YES", "INDEPENDENT=NO"))),
        "INDEPENDENT=NO: not a value of this enumerated-string (YES)",
        PART_4.replace("YES", "NO"),
        id="independent-no",
    ),
    pytest.param(
        _edit(STAGE, (PART_4, PART_4.replace("INDEPENDENT=YES", 'INDEPENDENT="YES"'))),
        'INDEPENDENT="YES" must be an enumerated-string',
        PART_4.replace("=YES", '="YES"'),
        id="independent-quoted",
    ),
    pytest.param(
        _edit(STAGE, (PART_4, PART_4.replace("INDEPENDENT=YES", "INDEPENDENT=yes"))),
        "INDEPENDENT=yes: not a value",
        PART_4.replace("YES", "yes"),
        id="independent-lowercase",
    ),
    pytest.param(
        _edit(STAGE, (PART_1, PART_1 + ',URI="part/1b.m4s"')),
        "attribute URI appears twice",
        PART_1 + ',URI="part/1b.m4s"',
        id="duplicate-attribute",
    ),
    pytest.param(
        _edit(STAGE, (PART_1, PART_1.replace("DURATION", "duration"))),
        "AttributeName 'duration'",
        PART_1.replace("DURATION", "duration"),
        id="lowercase-attribute-name",
    ),
    pytest.param(
        _edit(STAGE, (PART_1, PART_1.replace(",URI", ", URI"))),
        "AttributeName ' URI'",
        PART_1.replace(",URI", ", URI"),
        id="whitespace-in-attribute-list",
    ),
    pytest.param(
        _edit(STAGE, (PART_1, PART_1 + ",")), "ends with a comma", PART_1 + ",", id="trailing-comma"
    ),
    pytest.param(
        _edit(STAGE, (PART_1, PART_1 + ",REQ-FUTURE=1")),
        "REQ- attribute makes clients ignore the tag",
        PART_1 + ",REQ-FUTURE=1",
        id="unknown-req-attribute",
    ),
    pytest.param(
        _edit(STAGE, ('URI="part/1.m4s?sid=abc"', 'URI=""')),
        "empty quoted-string",
        '#EXT-X-PART:DURATION=0.5,URI=""',
        id="empty-part-uri",
    ),
    pytest.param(
        _edit(STAGE, (MAP_2, '#EXT-X-MAP:URI=""')),
        "EXT-X-MAP: URI is an empty quoted-string",
        '#EXT-X-MAP:URI=""',
        id="empty-map-uri",
    ),
    pytest.param(
        _edit(STAGE, ("seg/100.m4s?sid=abc", "seg/100 .m4s?sid=abc")),
        "contains whitespace",
        "seg/100 .m4s?sid=abc",
        id="whitespace-in-uri-line",
    ),
    pytest.param(
        _edit(STAGE, ("seg/100.m4s?sid=abc", "seg/100.m4s?sid=%zz")),
        "is not a URI reference",
        "seg/100.m4s?sid=%zz",
        id="bad-percent-encoding",
    ),
    pytest.param(
        _edit(STAGE, (PART_1, PART_1.replace("DURATION=0.5,", ""))),
        "without DURATION: the attribute is REQUIRED",
        PART_1.replace("DURATION=0.5,", ""),
        id="part-without-duration",
    ),
    pytest.param(
        _edit(STAGE, (PART_1, "#EXT-X-PART:DURATION=0.5")),
        "without URI: the attribute is REQUIRED",
        "#EXT-X-PART:DURATION=0.5",
        id="part-without-uri",
    ),
    pytest.param(
        _edit(STAGE, ("10:00:00.000+00:00", "10:00:00.000")),
        "with a time zone",
        "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:00.000",
        id="date-time-without-offset",
    ),
    pytest.param(
        _edit(STAGE, ("2026-05-01T10:00:00.000+00:00", "2026-05-01 10:00:00Z")),
        "not an ISO 8601",
        "#EXT-X-PROGRAM-DATE-TIME:2026-05-01 10:00:00Z",
        id="date-time-not-iso-8601",
    ),
    pytest.param(
        _edit(STAGE, ("2026-05-01T10:00:00.000", "2026-02-30T10:00:00.000")),
        "not a valid date-time",
        "#EXT-X-PROGRAM-DATE-TIME:2026-02-30T10:00:00.000+00:00",
        id="date-time-invalid-date",
    ),
    pytest.param(
        _edit(STAGE, (DATE_101, DATE_101.replace("02.000", "01.000"))),
        "overlaps the previous segment by 1.000 s",
        DATE_101.replace("02.000", "01.000"),
        id="date-time-ambiguous",
    ),
    pytest.param(
        _edit(STAGE, (DATE_102, DATE_102.replace("02.800", "01.800"))),
        "MUST NOT become ambiguous",
        DATE_102.replace("02.800", "01.800"),
        id="date-time-backwards-at-the-live-edge",
    ),
    pytest.param(
        _edit(STAGE, (DATE_101, DATE_101 + "\n" + DATE_101)),
        "second EXT-X-PROGRAM-DATE-TIME",
        DATE_101,
        id="two-dates-for-a-segment",
    ),
    pytest.param(
        _move(STAGE, "#EXT-X-MEDIA-SEQUENCE:100", "seg/100.m4s?sid=abc"),
        "EXT-X-MEDIA-SEQUENCE after the first",
        "#EXT-X-MEDIA-SEQUENCE:100",
        id="media-sequence-after-first-segment",
    ),
    pytest.param(
        _move(STAGE, "#EXT-X-MEDIA-SEQUENCE:100", '#EXT-X-MAP:URI="init/1.mp4?sid=abc"'),
        "EXT-X-MEDIA-SEQUENCE after the first Media Segment began (line 7)",
        "#EXT-X-MEDIA-SEQUENCE:100",
        id="media-sequence-after-a-segment-tag",
    ),
    pytest.param(
        _move(STAGE, "#EXT-X-DISCONTINUITY-SEQUENCE:3", "#EXT-X-DISCONTINUITY"),
        "after an EXT-X-DISCONTINUITY",
        "#EXT-X-DISCONTINUITY-SEQUENCE:3",
        id="discontinuity-sequence-after-discontinuity",
    ),
    pytest.param(
        _move(STAGE, "#EXT-X-DISCONTINUITY-SEQUENCE:3", '#EXT-X-MAP:URI="init/1.mp4?sid=abc"'),
        "EXT-X-DISCONTINUITY-SEQUENCE after the first Media Segment",
        "#EXT-X-DISCONTINUITY-SEQUENCE:3",
        id="discontinuity-sequence-after-first-segment",
    ),
    pytest.param(
        _move(STAGE, PART_3, "#EXTINF:2.000,"),
        "after the EXTINF on line",
        PART_3,
        id="part-after-its-parents-extinf",
    ),
    pytest.param(
        _move(STAGE, MAP_2, PART_4),
        "EXT-X-MAP after the first EXT-X-PART of its Parent Segment",
        MAP_2,
        id="map-after-first-part",
    ),
    pytest.param(
        _move(STAGE, DATE_102, PART_6),
        "EXT-X-PROGRAM-DATE-TIME after the first EXT-X-PART",
        DATE_102,
        id="date-time-after-first-part",
    ),
    pytest.param(
        _move(STAGE, "#EXT-X-DISCONTINUITY", PART_4),
        "EXT-X-DISCONTINUITY after the first EXT-X-PART",
        "#EXT-X-DISCONTINUITY",
        id="discontinuity-after-first-part",
    ),
    pytest.param(
        _edit(STAGE, (HINT, HINT + "\n" + HINT.replace("8", "9"))),
        "second EXT-X-PRELOAD-HINT with TYPE=PART",
        HINT.replace("8", "9"),
        id="two-preload-hints-of-a-type",
    ),
    pytest.param(
        _edit(STAGE, (HINT, HINT.replace("part/8", "part/7"))),
        "a part already in the playlist",
        HINT.replace("part/8", "part/7"),
        id="preload-hint-for-a-listed-part",
    ),
    pytest.param(
        _edit(STAGE, (HINT, HINT.replace("TYPE=PART", "TYPE=SEGMENT"))),
        "TYPE=SEGMENT: not a value",
        HINT.replace("TYPE=PART", "TYPE=SEGMENT"),
        id="preload-hint-unknown-type",
    ),
    pytest.param(
        _edit(STAGE, (HINT, "#EXT-X-PRELOAD-HINT:TYPE=PART")),
        "without URI",
        "#EXT-X-PRELOAD-HINT:TYPE=PART",
        id="preload-hint-without-uri",
    ),
    pytest.param(
        ENDED + HINT + "\n",
        "EXT-X-PRELOAD-HINT in a playlist with EXT-X-ENDLIST",
        HINT,
        id="preload-hint-with-endlist",
    ),
    pytest.param(
        STAGE.replace(HINT + "\n", "") + "#EXT-X-ENDLIST\n",
        "its Parent Segment will never be added",
        PART_6,
        id="trailing-parts-with-endlist",
    ),
    pytest.param(
        HEAD + SEGMENTS + "#EXT-X-ENDLIST\n" + PART_6 + "\n",
        "EXT-X-PART after the last segment",
        PART_6,
        id="part-after-endlist",
    ),
    pytest.param(
        _edit(STAGE, (CONTROL + "\n", CONTROL + "\n#EXT-X-ENDLIST\n#EXT-X-ENDLIST\n")),
        "a second EXT-X-ENDLIST",
        "#EXT-X-ENDLIST",
        id="endlist-twice",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-VERSION:6", "#EXT-X-VERSION:5")),
        "EXT-X-MAP in a Media Playlist needs EXT-X-VERSION 6 or higher, the playlist has EXT-X-VERSION:5",
        '#EXT-X-MAP:URI="init/1.mp4?sid=abc"',
        id="map-needs-version-6",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-VERSION:6\n", "")),
        "no EXT-X-VERSION (so version 1)",
        '#EXT-X-MAP:URI="init/1.mp4?sid=abc"',
        id="map-without-version",
    ),
    pytest.param(
        _edit(RFC_SIMPLE, ("#EXT-X-VERSION:3", "#EXT-X-VERSION:2")),
        "a floating-point EXTINF duration needs EXT-X-VERSION 3",
        4,
        id="float-extinf-needs-version-3",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-VERSION:6", "#EXT-X-VERSION:0")),
        "versions start at 1",
        "#EXT-X-VERSION:0",
        id="version-zero",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-VERSION:6", "#EXT-X-VERSION:6\n#EXT-X-VERSION:6")),
        "a second EXT-X-VERSION",
        "#EXT-X-VERSION:6",
        id="two-versions",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-TARGETDURATION:2", "#EXT-X-TARGETDURATION:2\n#EXT-X-TARGETDURATION:2")),
        "a second EXT-X-TARGETDURATION",
        "#EXT-X-TARGETDURATION:2",
        id="two-target-durations",
    ),
    pytest.param(
        _edit(STAGE, (CONTROL, CONTROL + "\n" + CONTROL)),
        "a second EXT-X-SERVER-CONTROL",
        CONTROL,
        id="two-server-controls",
    ),
    pytest.param(
        _edit(
            STAGE,
            (
                "#EXT-X-PART-INF:PART-TARGET=0.5",
                "#EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-PART-INF:PART-TARGET=0.5",
            ),
        ),
        "a second EXT-X-PART-INF",
        "#EXT-X-PART-INF:PART-TARGET=0.5",
        id="two-part-infs",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-TARGETDURATION:2\n", "")),
        "no EXT-X-TARGETDURATION",
        None,
        id="no-target-duration",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-PART-INF:PART-TARGET=0.5\n", "")),
        "EXT-X-PART without EXT-X-PART-INF",
        '#EXT-X-PART:DURATION=0.5,URI="part/0.m4s?sid=abc",INDEPENDENT=YES',
        id="parts-without-part-inf",
    ),
    pytest.param(
        _edit(STAGE, ("PART-TARGET=0.5", "PART-TARGET=0")),
        "PART-TARGET must be positive",
        "#EXT-X-PART-INF:PART-TARGET=0",
        id="part-target-zero",
    ),
    pytest.param(
        _edit(STAGE, ("#EXTINF:0.800,", "#EXTINF:0.900,")),
        "add up to 0.8 s, its EXTINF says 0.900 s",
        "#EXTINF:0.900,",
        id="parts-do-not-add-up-to-their-segment",
    ),
    pytest.param(
        _edit(STAGE, ("#EXTINF:2.000,", "#EXTINF:1.900,")),
        "add up to 2 s, its EXTINF says 1.900 s (at most",
        "#EXTINF:1.900,",
        id="parts-longer-than-their-segment",
    ),
    pytest.param(
        _edit(STAGE, (PART_4 + "\n", ""), ('#EXT-X-PART:DURATION=0.3,URI="part/5.m4s?sid=abc"\n', "")),
        "a segment without EXT-X-PART tags after one with them",
        "seg/101.m4s?sid=abc",
        id="parts-removed-out-of-order",
    ),
    pytest.param(
        _edit(STAGE, ("#EXTINF:0.800,\n", "")),
        "without an EXTINF",
        "seg/101.m4s?sid=abc",
        id="uri-without-extinf",
    ),
    pytest.param(
        STAGE + "#EXTINF:1.0,\n", "EXTINF without its URI line", "#EXTINF:1.0,", id="extinf-without-uri"
    ),
    pytest.param(
        _edit(STAGE, ("#EXTINF:2.000,", "#EXTINF:2.000,\n#EXTINF:2.000,")),
        "a second EXTINF before the URI line",
        "#EXTINF:2.000,",
        id="two-extinfs-for-a-segment",
    ),
    pytest.param(
        _edit(STAGE, ("#EXTINF:2.000,", "#EXTINF:2.000")),
        "#EXTINF:<duration>,[<title>]",
        "#EXTINF:2.000",
        id="extinf-without-comma",
    ),
    pytest.param(
        _edit(STAGE, ("#EXTINF:2.000,", "#EXTINF:2s,")),
        "is not a decimal-floating-point or decimal-integer",
        "#EXTINF:2s,",
        id="extinf-malformed-duration",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-DISCONTINUITY\n", "#EXT-X-STREAM-INF:BANDWIDTH=1\n")),
        "is a Multivariant Playlist tag",
        "#EXT-X-STREAM-INF:BANDWIDTH=1",
        id="multivariant-tag",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-DISCONTINUITY\n", "#EXT-X-DISCONTINUITY:1\n")),
        "takes no value",
        "#EXT-X-DISCONTINUITY:1",
        id="discontinuity-with-value",
    ),
    pytest.param(
        STAGE + "#EXT-X-ENDLIST:YES\n",
        "EXT-X-ENDLIST takes no value",
        "#EXT-X-ENDLIST:YES",
        id="endlist-with-value",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-TARGETDURATION:2", "#EXT-X-TARGETDURATION")),
        "without its value",
        "#EXT-X-TARGETDURATION",
        id="target-duration-without-value",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-DISCONTINUITY\n", "#EXT-X-DISCONTINUITY \n")),
        "whitespace in the tag",
        "#EXT-X-DISCONTINUITY ",
        id="whitespace-after-a-tag",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-MEDIA-SEQUENCE:100", "#EXT-X-MEDIA-SEQUENCE: 100")),
        "is not a decimal-integer",
        "#EXT-X-MEDIA-SEQUENCE: 100",
        id="whitespace-in-a-tag-value",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-DISCONTINUITY\n", "#EXTM3U\n#EXT-X-DISCONTINUITY\n")),
        "#EXTM3U again",
        "#EXTM3U",
        id="extm3u-twice",
    ),
    pytest.param(
        _edit(STAGE, ("seg/100.m4s", "seg/1\x0100.m4s")),
        "control character U+0001",
        "seg/1\x0100.m4s?sid=abc",
        id="control-character",
    ),
    pytest.param(
        _edit(STAGE, ("seg/100.m4s", "seg/1\r00.m4s")),
        "carriage return not followed by a line feed",
        15,
        id="lone-carriage-return",
    ),
    pytest.param(
        _edit(STAGE, ("seg/100.m4s?sid=abc", "seg/100.m4s?sid=abc\t")),
        "a tab",
        "seg/100.m4s?sid=abc\t",
        id="tab",
    ),
    pytest.param(
        _edit(STAGE, ("seg/100.m4s?sid=abc", "seg/100.m4s?sid=\u0065\u0301")),
        "normalization form NFC",
        15,
        id="not-nfc",
    ),
    pytest.param(
        _edit(STAGE, ("seg/100.m4s", "seg/{$n}.m4s")),
        "variable reference {$n} without an EXT-X-DEFINE",
        "seg/{$n}.m4s?sid=abc",
        id="undefined-variable",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-VERSION:6", '#EXT-X-VERSION:11\n#EXT-X-DEFINE:QUERYPARAM="token"')),
        "needs the playlist's URI",
        '#EXT-X-DEFINE:QUERYPARAM="token"',
        id="queryparam-without-uri",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-VERSION:6", '#EXT-X-VERSION:8\n#EXT-X-DEFINE:IMPORT="q"')),
        "no Multivariant Playlist to import from",
        '#EXT-X-DEFINE:IMPORT="q"',
        id="import-without-multivariant",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-VERSION:6", '#EXT-X-VERSION:8\n#EXT-X-DEFINE:NAME="a",VALUE="1",IMPORT="b"')),
        "exactly one of NAME, IMPORT and QUERYPARAM",
        '#EXT-X-DEFINE:NAME="a",VALUE="1",IMPORT="b"',
        id="define-with-two-modes",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-VERSION:6", '#EXT-X-VERSION:6\n#EXT-X-DEFINE:NAME="a",VALUE="1"')),
        "EXT-X-DEFINE (variable substitution) needs EXT-X-VERSION 8",
        '#EXT-X-DEFINE:NAME="a",VALUE="1"',
        id="define-needs-version-8",
    ),
    pytest.param(
        _edit(STAGE, ("seg/100.m4s?sid=abc", "#EXT-X-BYTERANGE:1000\nseg/100.m4s?sid=abc")),
        "the previous Media Segment is not a sub-range",
        "#EXT-X-BYTERANGE:1000",
        id="byterange-without-offset",
    ),
    pytest.param(
        _edit(STAGE, ('URI="part/1.m4s?sid=abc"', 'URI="part/1.m4s?sid=abc",BYTERANGE="100"')),
        "the previous part of this Parent Segment is not a sub-range of the same resource",
        PART_1 + ',BYTERANGE="100"',
        id="part-byterange-without-offset",
    ),
    pytest.param(
        _edit(STAGE, (MAP_2, MAP_2 + ',BYTERANGE="1000"')),
        "is not a byte range <n>@<o>",
        MAP_2 + ',BYTERANGE="1000"',
        id="map-byterange-without-offset",
    ),
    pytest.param(
        _edit(STAGE, (MAP_2, '#EXT-X-KEY:METHOD=NONE,URI="key"\n' + MAP_2)),
        "METHOD=NONE with URI: MUST NOT",
        '#EXT-X-KEY:METHOD=NONE,URI="key"',
        id="key-none-with-uri",
    ),
    pytest.param(
        _edit(STAGE, (MAP_2, "#EXT-X-KEY:METHOD=AES-128\n" + MAP_2)),
        "without URI: REQUIRED unless",
        "#EXT-X-KEY:METHOD=AES-128",
        id="key-without-uri",
    ),
    pytest.param(
        _edit(STAGE, (MAP_2, '#EXT-X-KEY:METHOD=AES-128,URI="key"\n' + MAP_2)),
        "the IV is REQUIRED",
        MAP_2,
        id="map-under-aes-128-without-iv",
    ),
    pytest.param(
        _edit(STAGE, (MAP_2, '#EXT-X-KEY:METHOD=AES-128,URI="key",IV=0x1234\n' + MAP_2)),
        "not a 128-bit number",
        '#EXT-X-KEY:METHOD=AES-128,URI="key",IV=0x1234',
        id="key-short-iv",
    ),
    pytest.param(
        _edit(STAGE, ('URI="../audio/media.m3u8"', 'URI="https://example.com/audio.m3u8"')),
        "is absolute: it MUST be relative",
        '#EXT-X-RENDITION-REPORT:URI="https://example.com/audio.m3u8",LAST-MSN=102,LAST-PART=1',
        id="rendition-report-absolute-uri",
    ),
    pytest.param(
        _edit(STAGE, ("LAST-PART=1", "LAST-PART=-1")),
        "LAST-PART '-1' is not a decimal-integer",
        '#EXT-X-RENDITION-REPORT:URI="../audio/media.m3u8",LAST-MSN=102,LAST-PART=-1',
        id="rendition-report-negative-part",
    ),
    pytest.param(
        _edit(
            STAGE, (MAP_2, '#EXT-X-DATERANGE:ID="ad",START-DATE="2026-05-01T10:00:02.000Z"\n' + MAP_2)
        ).replace("#EXT-X-PROGRAM-DATE-TIME", "#EXT-X-FORMER-DATE-TIME"),
        "EXT-X-DATERANGE in a playlist without EXT-X-PROGRAM-DATE-TIME",
        '#EXT-X-DATERANGE:ID="ad",START-DATE="2026-05-01T10:00:02.000Z"',
        id="daterange-without-date-time",
    ),
    pytest.param(
        _edit(STAGE, (MAP_2, '#EXT-X-DATERANGE:ID="ad",DURATION=5\n' + MAP_2)),
        "without START-DATE",
        '#EXT-X-DATERANGE:ID="ad",DURATION=5',
        id="daterange-without-start",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-VERSION:6", "#EXT-X-VERSION:6\n#EXT-X-PLAYLIST-TYPE:LIVE")),
        "must be EVENT or VOD",
        "#EXT-X-PLAYLIST-TYPE:LIVE",
        id="playlist-type-unknown",
    ),
    pytest.param(
        _edit(STAGE, ("#EXT-X-VERSION:6", "#EXT-X-VERSION:6\n#EXT-X-START:PRECISE=YES")),
        "EXT-X-START without TIME-OFFSET",
        "#EXT-X-START:PRECISE=YES",
        id="start-without-time-offset",
    ),
]


@pytest.mark.parametrize(("text", "message", "line"), MEDIA_VIOLATIONS)
def test_media_playlist_violations(text: str, message: str, line: str | int | None) -> None:
    with pytest.raises(PlaylistError) as caught:
        parse_media_playlist(text)
    assert message in caught.value.message
    expected = _line_of(text, line) if isinstance(line, str) else line
    assert caught.value.line == expected, str(caught.value)
    assert "§" in caught.value.message or "EXT" in caught.value.message


DELTA_VIOLATIONS = [
    pytest.param(
        _edit(DELTA, ("#EXT-X-VERSION:9", "#EXT-X-VERSION:8")),
        "EXT-X-SKIP needs EXT-X-VERSION 9 or higher",
        SKIP,
        id="skip-needs-version-9",
    ),
    pytest.param(
        _edit(DELTA, (SKIP, SKIP + ',RECENTLY-REMOVED-DATERANGES=""')),
        "RECENTLY-REMOVED-DATERANGES) needs EXT-X-VERSION 10",
        SKIP + ',RECENTLY-REMOVED-DATERANGES=""',
        id="daterange-skip-needs-version-10",
    ),
    pytest.param(
        _move(DELTA, SKIP, "seg/204.m4s"),
        "EXT-X-SKIP after the first Media Segment began",
        SKIP,
        id="skip-after-a-segment",
    ),
    pytest.param(_edit(DELTA, (SKIP, SKIP + "\n" + SKIP)), "a second EXT-X-SKIP", SKIP, id="two-skips"),
    pytest.param(
        _move(DELTA, "#EXT-X-MEDIA-SEQUENCE:200", SKIP),
        "EXT-X-MEDIA-SEQUENCE after the first Media Segment",
        "#EXT-X-MEDIA-SEQUENCE:200",
        id="media-sequence-after-skip",
    ),
    pytest.param(
        _edit(DELTA, (SKIP, "#EXT-X-SKIP:SKIPPED=4")),
        "without SKIPPED-SEGMENTS",
        "#EXT-X-SKIP:SKIPPED=4",
        id="skip-without-count",
    ),
    pytest.param(
        _edit(DELTA, (",CAN-SKIP-UNTIL=12", "")), "no CAN-SKIP-UNTIL", SKIP, id="skip-without-can-skip-until"
    ),
    pytest.param(
        DELTA_HEAD + DELTA_SEGMENTS + "#EXT-X-ENDLIST\n",
        "EXT-X-SKIP in a playlist with EXT-X-ENDLIST",
        SKIP,
        id="skip-with-endlist",
    ),
    pytest.param(
        _edit(DELTA, (_segment(204, date=_date(8)) + _segment(205, date=_date(10)), "")),
        "replaced segments within the Skip Boundary",
        SKIP,
        id="skipped-too-much",
    ),
    pytest.param(
        _edit(DELTA, (SKIP + "\n", SKIP + "\n" + _segment(202) + _segment(203))),
        "more than the Skip Boundary 12 s allows",
        SKIP,
        id="skipped-too-little",
    ),
]


@pytest.mark.parametrize(("text", "message", "line"), DELTA_VIOLATIONS)
def test_delta_update_violations(text: str, message: str, line: str) -> None:
    with pytest.raises(PlaylistError) as caught:
        parse_media_playlist(text)
    assert message in caught.value.message
    assert caught.value.line == _line_of(text, line), str(caught.value)


STREAM = (
    '#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2000000,CODECS="avc1.64001f,mp4a.40.2",'
    "RESOLUTION=1280x720,FRAME-RATE=30.000"
)
AUDIO = '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",DEFAULT=YES,URI="audio.m3u8"'

MULTIVARIANT_VIOLATIONS = [
    pytest.param(
        _edit(MULTIVARIANT, ("BANDWIDTH=2500000,AVERAGE-", "AVERAGE-")),
        "without BANDWIDTH",
        STREAM.replace("BANDWIDTH=2500000,AVERAGE-", "AVERAGE-"),
        id="stream-inf-without-bandwidth",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("BANDWIDTH=2500000", "BANDWIDTH=2500000,BANDWIDTH=1")),
        "BANDWIDTH appears twice",
        STREAM.replace("BANDWIDTH=2500000", "BANDWIDTH=2500000,BANDWIDTH=1"),
        id="duplicate-bandwidth",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("BANDWIDTH=2500000", "BANDWIDTH=2.5e6")),
        "is not a decimal-integer",
        STREAM.replace("BANDWIDTH=2500000", "BANDWIDTH=2.5e6"),
        id="bandwidth-not-integer",
    ),
    pytest.param(
        MULTIVARIANT.replace("media.m3u8?sid=abc\n", ""),
        "without the URI line after it",
        STREAM,
        id="stream-inf-without-uri",
    ),
    pytest.param(
        _edit(MULTIVARIANT, (STREAM, STREAM + "\n#EXT-X-INDEPENDENT-SEGMENTS")),
        "where the URI line of the EXT-X-STREAM-INF on line 4 belongs",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        id="tag-between-stream-inf-and-uri",
    ),
    pytest.param(
        MULTIVARIANT + "other.m3u8\n",
        "without an EXT-X-STREAM-INF",
        "other.m3u8",
        id="uri-without-stream-inf",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("1280x720", "1280*720")),
        "is not a decimal-resolution",
        STREAM.replace("1280x720", "1280*720"),
        id="resolution-malformed",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("RESOLUTION=1280x720", 'RESOLUTION="1280x720"')),
        "must be a decimal-resolution",
        STREAM.replace("RESOLUTION=1280x720", 'RESOLUTION="1280x720"'),
        id="resolution-quoted",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("1280x720", "0x720")),
        "has no pixels",
        STREAM.replace("1280x720", "0x720"),
        id="resolution-zero",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ('CODECS="avc1.64001f,mp4a.40.2"', "CODECS=avc1.64001f")),
        "must be a quoted-string",
        STREAM.replace('CODECS="avc1.64001f,mp4a.40.2"', "CODECS=avc1.64001f"),
        id="codecs-unquoted",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("avc1.64001f,mp4a", "avc1.64001f, mp4a")),
        "' mp4a.40.2' is not an RFC 6381 format",
        STREAM.replace("avc1.64001f,mp4a", "avc1.64001f, mp4a"),
        id="codecs-with-a-space",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ('"avc1.64001f,mp4a.40.2"', '""')),
        "CODECS is an empty quoted-string",
        STREAM.replace('"avc1.64001f,mp4a.40.2"', '""'),
        id="codecs-empty",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("FRAME-RATE=30.000", "FRAME-RATE=30.000,VIDEO-RANGE=HDR")),
        "VIDEO-RANGE=HDR: not a value",
        STREAM + ",VIDEO-RANGE=HDR",
        id="video-range-unknown",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("FRAME-RATE=30.000", 'FRAME-RATE=30.000,AUDIO="aac"')),
        "AUDIO='aac': no EXT-X-MEDIA with TYPE=AUDIO",
        STREAM + ',AUDIO="aac"',
        id="audio-group-missing",
    ),
    pytest.param(
        _edit(
            MULTIVARIANT, (STREAM, AUDIO.replace("TYPE=AUDIO", "TYPE=VIDEO") + "\n" + STREAM + ',AUDIO="aac"')
        ),
        "no EXT-X-MEDIA with TYPE=AUDIO",
        STREAM + ',AUDIO="aac"',
        id="audio-group-of-another-type",
    ),
    pytest.param(
        _edit(MULTIVARIANT, (STREAM, AUDIO.replace(',NAME="English"', "") + "\n" + STREAM)),
        "without NAME",
        AUDIO.replace(',NAME="English"', ""),
        id="media-without-name",
    ),
    pytest.param(
        _edit(MULTIVARIANT, (STREAM, AUDIO + "\n" + AUDIO.replace("English", "Deutsch") + "\n" + STREAM)),
        "a second DEFAULT=YES in group 'aac'",
        AUDIO.replace("English", "Deutsch"),
        id="two-defaults-in-a-group",
    ),
    pytest.param(
        _edit(
            MULTIVARIANT, (STREAM, AUDIO + "\n" + AUDIO.replace("DEFAULT=YES", "DEFAULT=NO") + "\n" + STREAM)
        ),
        "a second NAME='English'",
        AUDIO.replace("DEFAULT=YES", "DEFAULT=NO"),
        id="two-names-in-a-group",
    ),
    pytest.param(
        _edit(MULTIVARIANT, (STREAM, '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="s",NAME="en"\n' + STREAM)),
        "TYPE=SUBTITLES without URI",
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="s",NAME="en"',
        id="subtitles-without-uri",
    ),
    pytest.param(
        _edit(MULTIVARIANT, (STREAM, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000\n" + STREAM)),
        "without URI",
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000",
        id="iframe-stream-inf-without-uri",
    ),
    pytest.param(
        _edit(MULTIVARIANT, (STREAM, "#EXTINF:2.0,\n" + STREAM)),
        "is a Media Playlist tag",
        "#EXTINF:2.0,",
        id="media-segment-tag",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-TARGETDURATION:2")),
        "is a Media Playlist tag",
        "#EXT-X-TARGETDURATION:2",
        id="media-playlist-tag",
    ),
    pytest.param(
        _edit(
            MULTIVARIANT,
            ("#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-INDEPENDENT-SEGMENTS"),
        ),
        "a second EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        id="independent-segments-twice",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("FRAME-RATE=30.000", "FRAME-RATE=30.000,CLOSED-CAPTIONS=NONE"))
        + "#EXT-X-STREAM-INF:BANDWIDTH=65000\naudio.m3u8\n",
        "without CLOSED-CAPTIONS=NONE, which the one on line 4 has",
        "#EXT-X-STREAM-INF:BANDWIDTH=65000",
        id="closed-captions-none-on-one-variant-only",
    ),
    pytest.param(
        _edit(MULTIVARIANT, (STREAM, '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="en"\n' + STREAM)),
        "without INSTREAM-ID: REQUIRED",
        '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="en"',
        id="closed-captions-without-instream-id",
    ),
    pytest.param(
        _edit(
            MULTIVARIANT,
            (
                STREAM,
                '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="en",INSTREAM-ID="CC5"\n' + STREAM,
            ),
        ),
        "CC1-CC4 or SERVICE1-SERVICE63",
        '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="en",INSTREAM-ID="CC5"',
        id="closed-captions-bad-instream-id",
    ),
    pytest.param(
        _edit(MULTIVARIANT, (STREAM, '#EXT-X-SESSION-DATA:DATA-ID="t",VALUE="v",URI="t.json"\n' + STREAM)),
        "exactly one of VALUE and URI",
        '#EXT-X-SESSION-DATA:DATA-ID="t",VALUE="v",URI="t.json"',
        id="session-data-value-and-uri",
    ),
    pytest.param(
        _edit(MULTIVARIANT, (STREAM, "#EXT-X-SESSION-KEY:METHOD=NONE\n" + STREAM)),
        "METHOD MUST NOT be NONE",
        "#EXT-X-SESSION-KEY:METHOD=NONE",
        id="session-key-none",
    ),
    pytest.param("#EXTM3U\n#EXT-X-VERSION:6\n", "no EXT-X-STREAM-INF", None, id="no-variants"),
    pytest.param(
        _edit(MULTIVARIANT, ("#EXT-X-VERSION:6", '#EXT-X-VERSION:8\n#EXT-X-DEFINE:IMPORT="q"')),
        "IMPORT in a Multivariant Playlist: MUST NOT",
        '#EXT-X-DEFINE:IMPORT="q"',
        id="import-in-multivariant",
    ),
    pytest.param(
        _edit(MULTIVARIANT, ("FRAME-RATE=30.000", 'FRAME-RATE=30.000,REQ-VIDEO-LAYOUT="CH-STEREO"')),
        "attribute REQ-VIDEO-LAYOUT needs EXT-X-VERSION 12",
        STREAM + ',REQ-VIDEO-LAYOUT="CH-STEREO"',
        id="req-attribute-needs-version-12",
    ),
]


@pytest.mark.parametrize(("text", "message", "line"), MULTIVARIANT_VIOLATIONS)
def test_multivariant_playlist_violations(text: str, message: str, line: str | None) -> None:
    with pytest.raises(PlaylistError) as caught:
        parse_multivariant_playlist(text)
    assert message in caught.value.message
    assert caught.value.line == (None if line is None else _line_of(text, line)), str(caught.value)


def test_a_media_playlist_is_not_a_multivariant_one_and_back() -> None:
    with pytest.raises(PlaylistError, match="EXT-X-TARGETDURATION is a Media Playlist tag"):
        parse_multivariant_playlist(STAGE)
    with pytest.raises(PlaylistError, match="EXT-X-STREAM-INF is a Multivariant Playlist tag"):
        parse_media_playlist(MULTIVARIANT)


# -- generated playlists -------------------------------------------------------------------------


def _generated(segments: list[list[int]], trailing: list[int], part_target: int) -> str:
    """A live LL-HLS playlist; durations in milliseconds, the first part of each segment independent."""
    longest = max((sum(parts) for parts in segments), default=1000)
    target = max(1, int((Decimal(longest) / 1000).to_integral_value(rounding=ROUND_HALF_UP)))
    seconds = Decimal(part_target) / 1000
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * seconds},"
        f"CAN-SKIP-UNTIL={6 * target}",
        f"#EXT-X-PART-INF:PART-TARGET={seconds}",
        "#EXT-X-MEDIA-SEQUENCE:7",
        '#EXT-X-MAP:URI="init.mp4"',
        "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:00.000Z",
    ]
    number = 0
    for msn, parts in enumerate([*segments, trailing], 7):
        for index, duration in enumerate(parts):
            independent = ",INDEPENDENT=YES" if index == 0 else ""
            lines.append(
                f'#EXT-X-PART:DURATION={Decimal(duration) / 1000},URI="part/{number}.m4s"{independent}'
            )
            number += 1
        if msn - 7 < len(segments):
            lines += [f"#EXTINF:{Decimal(sum(parts)) / 1000},", f"seg/{msn}.m4s"]
    lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/{number}.m4s"')
    return "\n".join(lines) + "\n"


PART_TARGET_MS = 200
_parts = st.lists(st.integers(PART_TARGET_MS * 85 // 100, PART_TARGET_MS), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, database=None)
@given(
    segments=st.lists(_parts, max_size=6),
    trailing=st.lists(st.integers(170, 200), max_size=5),
    short=st.integers(1, 200),
)
def test_generated_playlists(segments: list[list[int]], trailing: list[int], short: int) -> None:
    # The last part of a segment may be as short as it likes.
    segments = [[*parts[:-1], min(parts[-1], short)] for parts in segments]
    playlist = parse_media_playlist(_generated(segments, trailing, PART_TARGET_MS))
    assert [[round(p.duration * 1000) for p in s.parts] for s in playlist.segments] == segments
    assert [round(p.duration * 1000) for p in playlist.trailing_parts] == trailing
    assert [s.media_sequence for s in playlist.segments] == list(range(7, 7 + len(segments)))
    assert all(
        s.parts[0].independent and not any(p.independent for p in s.parts[1:]) for s in playlist.segments
    )
    if trailing:
        assert (playlist.last_msn, playlist.last_part) == (7 + len(segments), len(trailing) - 1)
    elif segments:
        assert (playlist.last_msn, playlist.last_part) == (6 + len(segments), len(segments[-1]) - 1)
    assert playlist.warnings == []
    if segments:
        # One millisecond over the part target anywhere is refused.
        longer = [list(parts) for parts in segments]
        longer[-1][0] = PART_TARGET_MS + 1
        with pytest.raises(PlaylistError, match="is more than PART-TARGET"):
            parse_media_playlist(_generated(longer, trailing, PART_TARGET_MS))
