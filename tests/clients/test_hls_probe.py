"""The HLS probe's player logic on the packager's own playlists, without a server."""

from __future__ import annotations

from clients.hls_playlist_reader import parse_media_playlist
from clients.hls_probe import HlsProbe
from server.media.hls import Packager
from tests.clients.test_hls_playlist_reader import MEDIA


def _number(uri: str, kind: str) -> int:
    return int(uri.split(f"/{kind}/")[1].split(".")[0])


def test_a_delta_update_carries_the_map_in_force_over(packager: Packager) -> None:
    full = parse_media_playlist(packager.media_playlist(query="sid=s"), MEDIA)
    delta = parse_media_playlist(packager.media_playlist(query="sid=s", skip=True), MEDIA)
    assert delta.skipped > 0
    probe = HlsProbe(MEDIA, started=0.0)
    probe.on_playlist(full)
    probe.on_playlist(delta)
    assert all(s.map_uri is not None for s in delta.segments)


def test_the_probe_takes_every_part_in_order_across_a_switch(packager: Packager) -> None:
    full = parse_media_playlist(packager.media_playlist(query="sid=s"), MEDIA)
    probe = HlsProbe(MEDIA, started=0.0)
    probe.on_playlist(full)
    # It joins at the newest independent part.
    newest = full.segments[-1]
    assert probe.position == (newest.msn, max(i for i, p in enumerate(newest.parts) if p.independent))

    probe.position = (full.segments[0].msn, 0)  # from the oldest instead, to cross the switch
    fetched: list[int] = []
    while (fetch := probe.next_fetch()) is not None:
        if fetch.map_uri is not None:
            probe.on_map(packager.inits[_number(fetch.map_uri, "init")].data)
        part = packager.part(_number(fetch.uri, "part"))
        assert part is not None
        probe.on_media(fetch, part.data, mono=1.0, wall=2_000.0)
        fetched.append(part.number)
    first = full.segments[0].parts[0]
    assert fetched == list(range(_number(first.uri, "part"), packager.next_part_number))
    # Nothing more listed: a blocking reload for the next part, as a delta update.
    assert probe.reload_query() == {
        "_HLS_msn": str(newest.msn),
        "_HLS_part": str(len(newest.parts)),
        "_HLS_skip": "YES",
    }
    report = probe.finish(now=2.0)
    assert report.switches == 1 and report.new_maps == 1 and report.discontinuities == 1, report
    assert report.segments == len(full.segments) - 1  # all but the one being made
    assert report.errors == [] and report.init_offsets[0] == 0 and len(report.init_offsets) == 2
