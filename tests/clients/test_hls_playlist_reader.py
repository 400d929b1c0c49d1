"""The HLS playlist reader of ``forumcast watch --hls`` on the packager's own playlists."""

from __future__ import annotations

import pytest

from clients.hls_playlist_reader import parse_media_playlist, parse_multivariant
from server.media.hls import Packager

INDEX = "http://h/live/main/index.m3u8?sid=s"
MEDIA = "http://h/live/main/media.m3u8?sid=s"


def test_the_reader_reads_the_packagers_playlists(packager: Packager) -> None:
    variants = parse_multivariant(packager.multivariant_playlist(query="sid=s"), INDEX)
    assert [v.uri for v in variants] == [MEDIA]
    assert variants[0].codecs is not None and variants[0].resolution == "256x144"

    full = parse_media_playlist(packager.media_playlist(query="sid=s"), MEDIA)
    assert full.can_block_reload and full.part_target == pytest.approx(0.2)
    assert full.can_skip_until == 12 and full.part_hold_back == pytest.approx(0.6)
    msns = [s.msn for s in full.segments]
    assert msns == list(range(full.media_sequence, full.media_sequence + len(msns)))
    assert full.segments[-1].parts and not full.segments[-1].complete  # the one being made
    assert all(s.complete for s in full.segments[:-1])
    assert full.preload_hint == f"http://h/live/main/e/part/{packager.next_part_number}.m4s?sid=s"
    assert {s.map_uri for s in full.segments} == {
        "http://h/live/main/e/init/1.mp4?sid=s",
        "http://h/live/main/e/init/2.mp4?sid=s",
    }
    assert sum(s.discontinuity for s in full.segments) == 1
    assert all(s.date is not None for s in full.segments)

    # A delta update: the skipped segments are counted.
    delta = parse_media_playlist(packager.media_playlist(query="sid=s", skip=True), MEDIA)
    assert delta.skipped > 0
    assert delta.segments[0].msn == full.media_sequence + delta.skipped
    assert [s.msn for s in delta.segments] == msns[delta.skipped :]
