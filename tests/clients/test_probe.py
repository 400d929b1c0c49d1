"""What a watching probe measures, fed by hand: time to first fragment, latency, drops, re-inits."""

from __future__ import annotations

import json

import pytest

from clients.probe import WatchProbe, percentile
from server.encoding.testpattern import PatternSettings, encode_clip
from server.media.fmp4 import Fmp4Parser
from server.media.types import InitSegment, MediaFragment


@pytest.fixture(scope="module")
def stream() -> tuple[InitSegment, list[MediaFragment]]:
    items = Fmp4Parser().feed(encode_clip("probe", 2.0, PatternSettings(width=320, height=180, gop=25)))
    init, fragments = items[0], items[1:]
    assert isinstance(init, InitSegment)
    return init, [f for f in fragments if isinstance(f, MediaFragment)]


def _init_event(init: InitSegment, kind: str = "init") -> str:
    return json.dumps({"type": kind, "mime": init.mime})


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7
    assert percentile([], 0.5) is None


def test_a_clean_stream(stream: tuple[InitSegment, list[MediaFragment]]) -> None:
    init, fragments = stream
    probe = WatchProbe("ws://h/ws/watch/main", started=100.0)
    assert probe.on_text(json.dumps({"type": "now", "session": None})) == {"type": "now", "session": None}
    probe.on_text(_init_event(init))
    assert probe.on_binary(init.data, mono=100.05, wall=0.0) == [init]
    assert [f.keyframe for f in fragments].index(True, 1) == 5
    for index, fragment in enumerate(fragments):
        assert fragment.producer_time is not None
        # The first GOP (five fragments) comes at once from the GOP cache, a second old;
        # after it each fragment arrives 300 ms after its producer time.
        if index < 5:
            probe.on_binary(fragment.data, mono=100.2, wall=fragment.producer_time + 1.0 - index * 0.2)
        else:
            probe.on_binary(fragment.data, mono=100.2 + index * 0.2, wall=fragment.producer_time + 0.3)
    probe.on_text(json.dumps({"type": "viewers", "count": 3}))
    report = probe.finish(now=103.0, closed="duration reached")
    assert report.ttff_ms == pytest.approx(200)
    assert report.first_keyframe is True
    assert report.latency_p50_ms == pytest.approx(300, abs=1)
    assert report.latency_p99_ms == pytest.approx(300, abs=1)
    assert report.latency_samples == len(fragments) - 5
    assert report.join_age_ms == pytest.approx(1000, abs=1)
    assert report.fragments == len(fragments)
    assert report.drops == 0
    assert report.reinits == 0
    assert report.bytes == len(init.data) + sum(len(f) for f in fragments)
    assert report.media_seconds == pytest.approx(2.0)
    assert report.seconds == pytest.approx(3.0)
    assert report.viewers == 3
    assert report.mime == init.mime
    assert json.loads(report.to_json())["fragments"] == len(fragments)
    assert "latency p50 / p99 300 ms / 300 ms" in report.describe()


def test_sequence_gaps_are_drops(stream: tuple[InitSegment, list[MediaFragment]]) -> None:
    init, fragments = stream
    probe = WatchProbe(started=0.0)
    probe.on_text(_init_event(init))
    probe.on_binary(init.data, mono=0.0, wall=0.0)
    kept = [f for f in fragments if f.sequence_number not in (3, 4, 7)]
    for fragment in kept:
        probe.on_binary(fragment.data, mono=1.0, wall=0.0)
    report = probe.finish(now=2.0)
    assert report.drops == 3
    assert report.fragments == len(fragments) - 3


def test_a_reinit_is_counted_and_parsing_starts_over(stream: tuple[InitSegment, list[MediaFragment]]) -> None:
    init, fragments = stream
    probe = WatchProbe(started=0.0)
    probe.on_text(_init_event(init))
    probe.on_binary(init.data, mono=0.0, wall=0.0)
    probe.on_binary(fragments[0].data, mono=0.1, wall=0.0)
    probe.on_text(_init_event(init, "reinit"))
    probe.on_binary(init.data, mono=0.2, wall=0.0)
    probe.on_binary(fragments[1].data, mono=0.3, wall=0.0)
    report = probe.finish(now=1.0)
    assert report.reinits == 1
    assert report.init_offsets == [0, len(init.data) + len(fragments[0].data)]
    assert "init segments at bytes [0, " in report.describe()
    assert report.fragments == 2
    assert report.ttff_ms == pytest.approx(100)


def test_media_before_an_init_and_errors_are_reported(
    stream: tuple[InitSegment, list[MediaFragment]],
) -> None:
    _, fragments = stream
    probe = WatchProbe(started=0.0)
    assert probe.on_binary(fragments[0].data, mono=0.0, wall=0.0) == []
    assert probe.on_text("not json") is None
    probe.on_text(json.dumps({"type": "error", "code": "live.too_slow", "message": "fell behind"}))
    report = probe.finish(now=1.0)
    assert report.fragments == 0
    assert report.ttff_ms is None
    assert report.errors == ["media before any init segment", "live.too_slow: fell behind"]
    assert "first fragment    -" in report.describe()
