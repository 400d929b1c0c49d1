"""An input's health as automation sees it: bytes keep it up, silence takes it down."""

from __future__ import annotations

from datetime import UTC, datetime

from server.clock import ManualClock
from server.encoding.testpattern import PatternSettings, encode_clip
from server.live.inputs import LiveInput, PublisherSession
from server.live.settings import LiveEnv, LiveSettings
from server.media.fmp4 import split_clip
from server.metrics import Metrics
from server.schedule.model import InputDecl


def test_bytes_between_fragments_keep_an_input_up_and_silence_takes_it_down() -> None:
    init, fragments = split_clip(
        encode_clip("IN", 1.0, PatternSettings(width=160, height=90, preset="ultrafast", busy=False))
    )
    clock = ManualClock(datetime(2020, 12, 6, 1, 0, tzinfo=UTC))
    env = LiveEnv(clock, Metrics(), LiveSettings(gop_cache_bytes=2**20, stall_after=1.0))
    live = LiveInput(InputDecl("cam", "main", "Camera"), env)
    told: list[dict[str, object]] = []
    session = PublisherSession("ws", "test", told.append, lambda *_: None)
    live.attach(session)
    assert told[-1] == {"type": "tally", "on_air": False, "preview": False, "stage": "main"}
    t0 = clock.monotonic()
    assert not live.is_up(t0)  # connected, nothing published yet
    live.push(session, init)
    live.push(session, fragments[0])
    start = live.up_since
    assert start is not None and live.is_up(clock.monotonic())
    # A browser's recorder: chunks every 0.4 s, a whole fragment only at the next keyframe.
    base = live.last_fragment_at
    assert base is not None
    for step in (0.4, 0.8, 1.2, 1.6):
        live.received(session, base + step)
    assert live.is_up(base + 2.0) and live.up_since == start
    assert not live.is_up(base + 2.7)  # 1.1 s without a byte: stalled
    # Back after the stall: up again, and "up since" starts over (failback waits from here).
    live.received(session, base + 3.0)
    assert live.is_up(base + 3.1) and live.up_since == base + 3.0
    # Bytes that never complete a fragment: down once no fragment came for 5 s.
    for step in (3.5, 4.0, 4.5, 5.0, 5.5):
        live.received(session, base + step)
    assert not live.is_up(base + 5.6)
    # Another session's bytes (a replaced publisher) count for nothing; gone means down.
    live.received(PublisherSession("ws", "old", told.append, lambda *_: None), base + 5.7)
    assert live.last_data_at == base + 5.5
    live.detach(session)
    assert not live.is_up(base + 5.6) and live.up_since is None
