"""Every live input and stage program of the event, and the periodic work around them.

The hub is the one object the live handlers talk to: it finds inputs and programs, checks
stream keys, and runs one background task that, once a second, tells each stage's viewers
their count (only when it changed), updates the bitrate gauges, and every two seconds sends
publishers their stats. It also turns the scheduler's session changes into ``now`` events.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Mapping
from typing import Any

from server.auth import Tokens
from server.errors import ForumcastError
from server.events import EventBus, Subscription
from server.live.inputs import LiveInput
from server.live.program import Program
from server.media.fanout import GOP_CACHE_BYTES
from server.metrics import Metrics
from server.schedule.render import session_json
from server.schedule.scheduler import Scheduler
from server.schedule.service import ScheduleService
from server.tasks import background

log = logging.getLogger("forumcast.live")

#: Seconds between publisher stats messages.
STATS_INTERVAL = 2.0


class LiveHub:
    def __init__(
        self,
        schedule: ScheduleService,
        scheduler: Scheduler,
        bus: EventBus,
        metrics: Metrics,
        *,
        tokens: Tokens,
        stream_keys: Mapping[str, str] | None = None,
        gop_cache_bytes: int = GOP_CACHE_BYTES,
    ) -> None:
        self._schedule = schedule
        self._scheduler = scheduler
        self._bus = bus
        self._metrics = metrics
        self._tokens = tokens
        self._keys = dict(stream_keys or {})
        event = schedule.event
        self.inputs = {d.id: LiveInput(d, metrics, gop_cache_bytes=gop_cache_bytes) for d in event.inputs()}
        self.programs: dict[str, Program] = {}
        for stage in event.stages:
            program = Program(stage, metrics, gop_cache_bytes=gop_cache_bytes)
            if stage.inputs:
                program.follow(self.inputs[stage.inputs[0].id])
            self.programs[stage.id] = program

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

    def check_key(self, input_id: str, key: str | None) -> LiveInput:
        live = self.input(input_id)
        if not key or not hmac.compare_digest(key.encode(), self.stream_key(input_id).encode()):
            raise ForumcastError("live.bad_key", f"wrong or missing stream key for input {input_id!r}")
        return live

    def now_message(self, stage_id: str) -> dict[str, Any]:
        event = self._schedule.event
        status = self._scheduler.status(stage_id)
        zone = event.timezone
        return {
            "type": "now",
            "stage": stage_id,
            "state": status.state.value,
            "session": session_json(status.current, event, zone) if status.current else None,
            "next": session_json(status.next, event, zone) if status.next else None,
        }

    async def run(self) -> None:
        """The periodic work; also relays the scheduler's session changes as ``now`` events."""
        last_stats = 0.0
        with self._bus.subscribe() as subscription:
            async with background(self._relay_schedule(subscription), name="forumcast-now-events"):
                while True:
                    await asyncio.sleep(1.0)
                    now = time.monotonic()
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
                self.programs[event.stage].fanout.broadcast(self.now_message(event.stage))

    def _tick_viewers(self) -> None:
        for program in self.programs.values():
            count = program.viewer_count
            if count != program.announced_viewers:
                program.announced_viewers = count
                program.fanout.broadcast({"type": "viewers", "stage": program.stage.id, "count": count})

    def _send_stats(self, now: float) -> None:
        watching: dict[str, int] = {}
        for program in self.programs.values():
            if program.source is not None:
                watching[program.source.id] = watching.get(program.source.id, 0) + program.viewer_count
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
            closing += [
                v.ws.close(code=1001, message=b"server shutting down") for v in program.fanout.viewers
            ]
        for live in self.inputs.values():
            closing += [v.ws.close(code=1001, message=b"server shutting down") for v in live.preview.viewers]
            if live.publisher is not None:
                live.publisher.kick("live.shutting_down", "server shutting down")
        await asyncio.gather(*closing, return_exceptions=True)
