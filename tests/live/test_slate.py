"""The slate player (server/live/slate.py) on a manual clock: fragments on time, and a slate
whose encode fails is reported and plays once the encode works."""

from __future__ import annotations

import asyncio

from server.clock import ManualClock
from server.live.slate import Encoder, SlateLibrary, SlatePlayer
from server.live.slate_card import SlateCard
from server.live.slate_clip import SlateFormat, encode_slate
from server.media.types import InitSegment, MediaFragment
from tests.conftest import at

FORMAT = SlateFormat(width=160, height=90, audio="none")


async def inline(encoder: Encoder, card: SlateCard, fmt: SlateFormat) -> bytes:
    return encoder(card, fmt)


class Host:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.inits: list[InitSegment] = []
        self.fragments: list[tuple[float, MediaFragment]] = []
        self.failures = 0

    def slate_card(self) -> SlateCard:
        return SlateCard("主论坛", "Main Forum", next_line="Next · 下一场: Keynote", event_title="Test")

    def slate_format(self) -> SlateFormat:
        return FORMAT

    def on_slate(self, item: InitSegment | MediaFragment) -> None:
        if isinstance(item, InitSegment):
            self.inits.append(item)
        else:
            self.fragments.append((self.clock.monotonic(), item))

    def slate_failed(self) -> None:
        self.failures += 1


async def test_a_failed_slate_is_reported_and_plays_on_time_once_it_can() -> None:
    clock = ManualClock(at("2020-12-06T09:00:00+08:00"))
    calls = 0

    def flaky(card: SlateCard, fmt: SlateFormat) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("no encoder today")
        return encode_slate(card, fmt)

    host = Host(clock)
    player = SlatePlayer("main", SlateLibrary(encoder=flaky, run=inline), clock, host)
    player.start()
    for _ in range(5):
        await asyncio.sleep(0)
    assert host.failures == 1 and host.fragments == []
    await clock.run(0.9, step=0.1)
    assert host.fragments == []  # still waiting for the retry
    await clock.run(4.1, step=0.1)
    assert host.failures == 1 and len(host.inits) == 1
    # From the retry at 1 s on: the first fragment (a keyframe) at once, then each on its time.
    times = [round(at, 1) for at, _ in host.fragments]
    assert 1.0 <= times[0] <= 1.1 and host.fragments[0][1].keyframe  # (the retry wakes within a step)
    durations = [f.tracks[0].duration / host.inits[0].tracks[0].timescale for _, f in host.fragments]
    for (at_, _), (next_at, _), duration in zip(host.fragments, host.fragments[1:], durations, strict=False):
        assert abs(next_at - at_ - duration) <= 0.1 + 1e-6  # the clock moved in 0.1 s steps
    assert 3.5 <= sum(durations[:-1]) <= 4.0 + 1e-6
    await player.close()
