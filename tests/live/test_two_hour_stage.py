"""Two hours of one stage on the manual clock, in seconds of wall time: the whole live path
(scheduler, automation, failover and failback, a producer's delay and take, the slate, LL-HLS)
driven by one clock, with publishers that are plain coroutines on that clock (each loops a
real encoded clip, timestamps continuing, as the demo sources do). Asserts which source was
on air at each moment and that the program's decode times run on without a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.clock import ManualClock
from server.encoding.testpattern import PatternSettings, encode_clip
from server.events import EventBus
from server.live.automation import SLATE
from server.live.demo import loop_clip
from server.live.hub import LiveHub
from server.live.settings import LiveEnv, LiveSettings
from server.live.slate import Encoder, SlateLibrary
from server.live.slate_card import SlateCard
from server.live.slate_clip import SlateFormat
from server.live.ticks import LiveTicks
from server.media.fmp4 import split_clip
from server.media.switcher import Emit, Output, Reinit, Switched
from server.media.types import InitSegment, MediaFragment, TrackKind
from server.metrics import Metrics
from server.schedule.scheduler import Scheduler
from server.schedule.service import ScheduleService
from server.schedule.yaml_format import load_yaml_text
from server.store.memory import MemoryStore
from server.supervisor import Supervisor
from tests.conftest import at

EVENT = """
event: {id: twohours, title: {en: Two hours}, timezone: Asia/Shanghai}
venues: [{id: sz, name: {en: Shenzhen}, timezone: Asia/Shanghai}]
stages:
  - id: main
    title: {en: Main}
    kind: main
    venue: sz
    inputs:
      - {id: cam-a, title: Camera A, kind: camera}
      - {id: cam-b, title: Camera B, kind: camera}
      - {id: remote, title: Remote link, kind: remote}
sessions:
  - {id: opening, stage: main, title: {en: Opening}, input: cam-a,
     start: 2020-12-06T09:00:00+08:00, end: 2020-12-06T09:40:00+08:00}
  - {id: keynote, stage: main, title: {en: Keynote}, input: remote, backup_input: cam-b,
     start: 2020-12-06T09:45:00+08:00, end: 2020-12-06T10:25:00+08:00}
  - {id: panel, stage: main, title: {en: Panel}, input: cam-b,
     start: 2020-12-06T10:30:00+08:00, end: 2020-12-06T11:00:00+08:00}
"""

START = at("2020-12-06T08:59:00+08:00")
#: 1 s GOPs cut into 1 s fragments: two hours are 7,200 fragments per publisher.
PATTERN = PatternSettings(width=160, height=90, gop=25, fragment_ms=1000, preset="ultrafast", busy=False)


def t(hhmmss: str) -> datetime:
    return at(f"2020-12-06T{hhmmss}+08:00")


async def inline(encoder: Encoder, card: SlateCard, fmt: SlateFormat) -> bytes:
    """Slate encodes on the loop: the manual clock then never runs ahead of an encode."""
    return encoder(card, fmt)


@dataclass
class Switch:
    at: datetime
    source: str
    reason: str


class Recorder:
    """What the stage's viewers were sent: switches by clock time, and decode-time gaps."""

    def __init__(self, clock: ManualClock, reason: Callable[[], str]) -> None:
        self.clock = clock
        self.reason = reason
        self.switches: list[Switch] = []
        self.init: InitSegment | None = None
        self.ends: dict[TrackKind, float] = {}
        self.fragments = 0
        self.worst_gap = 0.0

    def __call__(self, output: Output) -> None:
        if isinstance(output, Reinit):
            self.init = output.init
        elif isinstance(output, Switched):
            self.switches.append(Switch(self.clock.now(), output.source, ""))
        elif isinstance(output, Emit):
            self._timeline(output.fragment)

    def _timeline(self, fragment: MediaFragment) -> None:
        assert self.init is not None
        if self.switches and not self.switches[-1].reason:
            self.switches[-1].reason = self.reason()  # known once the switch is done
        self.fragments += 1
        for traf in fragment.tracks:
            track = self.init.track(traf.track_id)
            assert track is not None
            start = traf.base_decode_time / track.timescale
            end = self.ends.get(track.kind)
            if end is not None:
                self.worst_gap = max(self.worst_gap, abs(start - end))
            self.ends[track.kind] = start + traf.duration / track.timescale

    def source_at(self, moment: datetime) -> str | None:
        shown = [s.source for s in self.switches if s.at <= moment]
        return shown[-1] if shown else None


@contextlib.asynccontextmanager
async def publishing(hub: LiveHub, input_id: str, clip: bytes) -> AsyncIterator[None]:
    init, fragments = split_clip(clip)
    task = asyncio.create_task(loop_clip(hub.inputs[input_id], init, fragments, hub.env.clock))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_two_hours_of_a_stage_on_the_manual_clock() -> None:
    clock = ManualClock(START)
    metrics, bus = Metrics(["main"]), EventBus()
    schedule = ScheduleService(load_yaml_text(EVENT, file="two-hours.yaml"), MemoryStore("twohours"), bus)
    scheduler = Scheduler(schedule, clock, bus, metrics=metrics)
    # A publisher of whole 1 s fragments is silent for 1 s between them: stalled only after 1.5 s.
    settings = LiveSettings(slate_size=(160, 90), failback_after=2.0, stall_after=1.5)
    hub = LiveHub(scheduler, LiveEnv(clock, metrics, settings), slates=SlateLibrary(run=inline))
    ticks = LiveTicks(hub, bus)
    program = hub.program("main")
    recorder = Recorder(clock, lambda: program.reason.value)
    program.outputs.append(recorder)
    clips = {name: encode_clip(name.upper(), 2.0, PATTERN) for name in ("cam-a", "cam-b", "remote")}
    tasks = Supervisor(clock, metrics)

    async def until(moment: datetime) -> None:
        await clock.run((moment - clock.now()).total_seconds(), step=0.2)

    tasks.start("scheduler", scheduler.run)
    for name, loop in (
        ("supervise", ticks.supervise),
        ("viewers", ticks.viewers),
        ("events", ticks.schedule_events),
    ):
        tasks.start(name, loop)
    try:
        async with publishing(hub, "cam-a", clips["cam-a"]), publishing(hub, "cam-b", clips["cam-b"]):
            async with publishing(hub, "remote", clips["remote"]):
                await until(t("09:30:00"))
                await schedule.delay("main", 10, at=clock.now(), by="producer")  # the opening overruns
                await until(t("10:05:00"))
            # The remote link is lost mid-keynote (its publisher is gone) and comes back.
            await until(t("10:10:00"))
            async with publishing(hub, "remote", clips["remote"]):
                await until(t("10:20:00"))
                await hub.take("main", "cam-a")  # a producer cuts to the room for two minutes
                await until(t("10:22:00"))
                await hub.resume("main")
                await until(t("11:12:00"))
    finally:
        await tasks.close()
        await hub.close()

    on_air = {
        "08:59:30": SLATE,  # before the first session
        "09:20:00": "cam-a",  # the opening
        "09:45:00": "cam-a",  # still the opening: delayed to 09:50
        "09:52:00": SLATE,  # the break, moved
        "10:00:00": "remote",  # the keynote, from 09:55
        "10:07:00": "cam-b",  # its backup while the link is down
        "10:12:00": "remote",  # back on the link
        "10:21:00": "cam-a",  # the producer's take
        "10:25:00": "remote",  # back to the schedule
        "10:38:00": SLATE,  # the break after the delayed keynote
        "10:50:00": "cam-b",  # the panel, from 10:40
        "11:11:00": SLATE,  # after the last session (11:10)
    }
    assert {moment: recorder.source_at(t(moment)) for moment in on_air} == on_air
    seen = [(s.source, s.reason) for s in recorder.switches]
    assert seen == [
        (SLATE, "schedule"),
        ("cam-a", "schedule"),
        (SLATE, "schedule"),
        ("remote", "schedule"),
        ("cam-b", "failover"),
        ("remote", "failback"),
        ("cam-a", "manual"),
        ("remote", "schedule"),
        (SLATE, "schedule"),
        ("cam-b", "schedule"),
        (SLATE, "schedule"),
    ]
    # When each switch happened: at its moment, plus at most one GOP for the next keyframe.
    due = [
        t("08:59:00"),
        t("09:00:00"),
        t("09:50:00"),
        t("09:55:00"),
        t("10:05:00"),
        t("10:10:02"),  # failback once the link has been up for failback_after
        t("10:20:00"),
        t("10:22:00"),
        t("10:35:00"),
        t("10:40:00"),
        t("11:10:00"),
    ]
    for switch, moment in zip(recorder.switches, due, strict=True):
        assert moment <= switch.at <= moment + timedelta(seconds=1.3), (switch, moment)
    # Every track's decode time runs on across all eleven switches (within a frame), and the
    # program was sent for the whole span (slate and inputs both run at 25 fps, 1 s fragments).
    assert recorder.worst_gap <= 1 / 25 + 1e-6
    span = (t("11:12:00") - START).total_seconds()
    assert recorder.ends[TrackKind.VIDEO] >= span - 2.0
    assert recorder.fragments >= span * 0.95
    assert metrics.registry.get_sample_value("forumcast_task_failures_total", {"task": "supervise"}) == 0.0
