"""Every live input and stage program of the event, and the periodic work around them.

The hub is the one object the live handlers talk to: it finds inputs and programs, checks
stream keys and takes, and runs one background task that supervises every program ten
times a second (so a stalled input fails over within ``stall_after`` + 0.1 s; a publisher
that disconnects fails over at once), tells each stage's viewers their count once a second
(only when it changed), updates the bitrate gauges, and every two seconds sends publishers
their stats. It turns the scheduler's session changes into program decisions and ``now``
events.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from server.auth import Tokens
from server.clock import Clock
from server.errors import ForumcastError
from server.events import EventBus, Subscription
from server.live.automation import FAILBACK_AFTER, SLATE
from server.live.hls import HlsOutput, epoch
from server.live.inputs import STALL_AFTER, LiveInput
from server.live.program import Program
from server.live.slate import SlateLibrary
from server.live.slate_card import SlateCard
from server.media.fanout import GOP_CACHE_BYTES
from server.media.hls import PART_TARGET, TARGET_DURATION, WINDOW, Packager
from server.media.switcher import Cut
from server.metrics import Metrics
from server.schedule.model import Event
from server.schedule.render import session_json
from server.schedule.scheduler import Scheduler
from server.schedule.service import ScheduleService
from server.tasks import background

log = logging.getLogger("forumcast.live")

#: Seconds between publisher stats messages.
STATS_INTERVAL = 2.0
#: Seconds between supervision passes over every program.
SUPERVISE_INTERVAL = 0.1


class LiveHub:
    def __init__(
        self,
        schedule: ScheduleService,
        scheduler: Scheduler,
        bus: EventBus,
        metrics: Metrics,
        clock: Clock,
        *,
        tokens: Tokens,
        stream_keys: Mapping[str, str] | None = None,
        gop_cache_bytes: int = GOP_CACHE_BYTES,
        stall_after: float = STALL_AFTER,
        failback_after: float = FAILBACK_AFTER,
        slate_size: tuple[int, int] = (1280, 720),
        slates: SlateLibrary | None = None,
        hls_target_duration: float = TARGET_DURATION,
        hls_part_target: float = PART_TARGET,
        hls_window: int = WINDOW,
    ) -> None:
        self._schedule = schedule
        self._scheduler = scheduler
        self._bus = bus
        self._metrics = metrics
        self._clock = clock
        self._tokens = tokens
        self._keys = dict(stream_keys or {})
        self.slates = slates or SlateLibrary()
        event = schedule.event
        self.inputs = {
            d.id: LiveInput(d, metrics, gop_cache_bytes=gop_cache_bytes, stall_after=stall_after)
            for d in event.inputs()
        }
        self.programs: dict[str, Program] = {}
        for stage in event.stages:
            program = Program(
                stage,
                {d.id: self.inputs[d.id] for d in stage.inputs},
                metrics,
                clock,
                self.slates,
                gop_cache_bytes=gop_cache_bytes,
                slate_size=slate_size,
                failback_after=failback_after,
                card=self.slate_card,
                on_switch=self._switched,
            )
            self.programs[stage.id] = program
        for live in self.inputs.values():
            live.on_gone.append(self._input_gone)
        #: Every program as LL-HLS; media URLs carry this run's epoch.
        self.hls_epoch = epoch()
        self.hls: dict[str, HlsOutput] = {}
        for stage_id, program in self.programs.items():
            packager = Packager(
                target_duration=hls_target_duration,
                window=hls_window,
                part_target=hls_part_target,
                prefix=f"{self.hls_epoch}/",
            )
            gauge = metrics.viewers.labels(stage=stage_id, protocol="hls")
            output = HlsOutput(packager, on_viewers=gauge.set)
            program.outputs.append(output)
            self.hls[stage_id] = output

    @property
    def event(self) -> Event:
        return self._schedule.event

    def stream_key(self, input_id: str) -> str:
        return self._keys.get(input_id) or self._tokens.stream_key(input_id)

    def input(self, input_id: str) -> LiveInput:
        live = self.inputs.get(input_id)
        if live is None:
            raise ForumcastError("live.unknown_input", f"no input {input_id!r}")
        return live

    def program(self, stage_id: str) -> Program:
        program = self.programs.get(stage_id)
        if program is None:
            raise ForumcastError("live.unknown_stage", f"no stage {stage_id!r}")
        return program

    def key_matches(self, input_id: str, key: str) -> bool:
        return bool(key) and hmac.compare_digest(key.encode(), self.stream_key(input_id).encode())

    def check_key(self, input_id: str, key: str | None) -> LiveInput:
        live = self.input(input_id)
        if not key or not self.key_matches(input_id, key):
            raise ForumcastError("live.bad_key", f"wrong or missing stream key for input {input_id!r}")
        return live

    def now_message(self, stage_id: str) -> dict[str, Any]:
        event = self._schedule.event
        status = self._scheduler.status(stage_id)
        zone = event.timezone
        program = self.program(stage_id)
        state = program.state_json()
        return {
            "type": "now",
            "stage": stage_id,
            "state": status.state.value,
            "session": session_json(status.current, event, zone) if status.current else None,
            "next": session_json(status.next, event, zone) if status.next else None,
            "program": {k: state[k] for k in ("source", "slate", "mode", "reason", "since")},
            "slate": state["slate"],
        }

    def slate_card(self, stage_id: str) -> SlateCard:
        """What stage ``stage_id``'s slate says now: its title and the next session."""
        event = self._schedule.event
        stage = event.stage(stage_id)
        assert stage is not None
        status = self._scheduler.status(stage_id)
        if status.current is not None:
            line = f"{status.current.title.best('en')} · We'll be right back · 马上回来"
        elif status.next is not None:
            line = f"Next · 下一场: {status.next.title.best('en')} — {self._when(status.next.start)}"
        else:
            line = None
        title = stage.title
        return SlateCard(title.zh, title.en, next_line=line, event_title=event.title.best("en"))

    def _when(self, start: datetime) -> str:
        """A start time in the event's zone, and in the venue's when that differs."""
        zone = self._schedule.event.timezone
        text = start.astimezone(zone).strftime("%d %b %H:%M %Z")
        if start.utcoffset() != start.astimezone(zone).utcoffset():
            text = f"{start.strftime('%H:%M %Z')} ({text})"
        return text

    def take(self, stage_id: str, source: str, *, cut: Cut = Cut.KEYFRAME) -> Program:
        """A producer's take of ``source`` (an input of the stage, or the slate)."""
        program = self.program(stage_id)
        if source != SLATE:
            live = program.inputs.get(source)
            if live is None:
                raise ForumcastError(
                    "live.unknown_input", f"stage {stage_id!r} has no input {source!r} (nor is it 'slate')"
                )
            if not live.is_up(time.monotonic()):
                raise ForumcastError(
                    "program.input_down",
                    f"input {source!r} is not publishing"
                    + ("" if live.publisher is None else f" (no fragment for {live.stall_after:g} s)"),
                )
        program.take(source, cut=cut)
        log.info("stage %s: producer took %s (%s cut)", stage_id, source, cut.value)
        return program

    def resume(self, stage_id: str) -> Program:
        """Back to the schedule's automation."""
        program = self.program(stage_id)
        program.resume(self._scheduler.status(stage_id).current, time.monotonic())
        log.info("stage %s: producer returned to automation", stage_id)
        return program

    def supervise(self, program: Program, now: float | None = None) -> None:
        status = self._scheduler.status(program.stage.id)
        program.supervise(status.current, time.monotonic() if now is None else now)

    def _switched(self, program: Program) -> None:
        program.fanout.broadcast(self.now_message(program.stage.id))

    def _input_gone(self, live: LiveInput) -> None:
        program = self.programs.get(live.decl.stage)
        if program is not None:
            program.input_gone(live)
            self.supervise(program)

    async def run(self) -> None:
        """The periodic work; also relays the scheduler's session changes as ``now`` events."""
        loop = asyncio.get_running_loop()
        last_tick = last_stats = loop.time()
        for program in self.programs.values():
            self.supervise(program)
        with self._bus.subscribe() as subscription:
            async with background(self._relay_schedule(subscription), name="forumcast-now-events"):
                while True:
                    await asyncio.sleep(SUPERVISE_INTERVAL)
                    now = time.monotonic()
                    for program in self.programs.values():
                        self.supervise(program, now)
                    for live in self.inputs.values():
                        live.tally()
                    if loop.time() - last_tick < 1.0:
                        continue
                    last_tick = loop.time()
                    self._tick_viewers()
                    for live in self.inputs.values():
                        self._metrics.input_bitrate.labels(input=live.id).set(live.bitrate(now) / 8)
                    if now - last_stats >= STATS_INTERVAL:
                        last_stats = now
                        self._send_stats(now)

    async def _relay_schedule(self, subscription: Subscription) -> None:
        async for event in subscription:
            if (
                event.type in ("session.started", "session.ended", "stage.delayed")
                and event.stage in self.programs
            ):
                program = self.programs[event.stage]
                self.supervise(program)
                program.slate.prefetch()  # the slate's "next" line changed
                program.fanout.broadcast(self.now_message(event.stage))

    def _tick_viewers(self) -> None:
        for output in self.hls.values():
            output.viewers()
        for program in self.programs.values():
            count = program.viewer_count
            if count != program.announced_viewers:
                program.announced_viewers = count
                program.fanout.broadcast({"type": "viewers", "stage": program.stage.id, "count": count})

    def _send_stats(self, now: float) -> None:
        watching: dict[str, int] = {}
        for program in self.programs.values():
            if program.source is not None:
                watching[program.source] = watching.get(program.source, 0) + program.viewer_count
        for live in self.inputs.values():
            if live.publisher is None:
                continue
            age = live.fragment_age(now)
            live.publisher.notify(
                {
                    "type": "stats",
                    "bitrate": round(live.bitrate(now)),
                    "fragment_age": None if age is None else round(age, 3),
                    "viewers": watching.get(live.id, 0),
                    "preview_viewers": len(live.preview.viewers),
                }
            )

    async def close(self) -> None:
        """Going away: every viewer and WebSocket publisher is closed with 1001."""
        closing = []
        for program in self.programs.values():
            await program.slate.close()
            closing += [
                v.ws.close(code=1001, message=b"server shutting down") for v in program.fanout.viewers
            ]
        for live in self.inputs.values():
            closing += [v.ws.close(code=1001, message=b"server shutting down") for v in live.preview.viewers]
            if live.publisher is not None:
                live.publisher.kick("live.shutting_down", "server shutting down")
        await asyncio.gather(*closing, return_exceptions=True)
        await self.slates.close()
