"""The live path's periodic work, one loop per concern, every wait on the service clock.

- :meth:`LiveTicks.supervise` (every ``supervise_interval``, 0.1 s): automation looks at
  every program (so a stalled input fails over within ``stall_after`` + 0.1 s; a publisher
  that disconnects fails over at once, without waiting for this) and publishers hear their
  tally when it changed.
- :meth:`LiveTicks.viewers` (every ``viewers_interval``, 1 s): the LL-HLS audience is
  counted (:meth:`LiveHub.count_hls`), each stage's viewers are told their count when it
  changed, and the gauges of the inputs and stages are set (:meth:`LiveTicks.gauges_once`).
- :meth:`LiveTicks.stalls` (every ``stall_check_interval``, 0.5 s): viewers that took nothing
  for ``max_behind`` are reset, their kernel buffers freed (one ``SIOCOUTQ`` per viewer).
- :meth:`LiveTicks.stats` (every ``stats_interval``, 2 s): publishers get their stats.
- :meth:`LiveTicks.schedule_events`: the scheduler's session changes and delays become
  program decisions, a new slate line and ``now`` events.

The app runs each loop as a supervised task, so one that fails is restarted and shows in
``/readyz``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from server.events import EventBus
from server.live.automation import on_bill
from server.live.hub import LiveHub
from server.schedule.model import Session

#: Schedule events that change what a program should show or what its slate says.
SCHEDULE_EVENTS = frozenset({"session.started", "session.ended", "stage.delayed"})


class LiveTicks:
    def __init__(self, hub: LiveHub, bus: EventBus) -> None:
        self._hub = hub
        self._bus = bus
        self._clock = hub.env.clock
        self._settings = hub.env.settings
        #: The (session, title) labels each stage's session gauge has now.
        self._sessions: dict[str, tuple[str, str]] = {}

    async def _every(self, interval: float, work: Callable[[], None]) -> None:
        while True:
            work()
            await self._clock.sleep(interval)

    async def supervise(self) -> None:
        await self._every(self._settings.supervise_interval, self.supervise_once)

    def supervise_once(self) -> None:
        hub = self._hub
        now = self._clock.monotonic()
        for program in hub.programs.values():
            hub.supervise(program, now)
        for live in hub.inputs.values():
            live.tally()

    async def viewers(self) -> None:
        while True:
            await self._hub.count_hls()
            self.viewers_once()
            await self._clock.sleep(self._settings.viewers_interval)

    def viewers_once(self) -> None:
        hub = self._hub
        for program in hub.programs.values():
            count = hub.viewer_count(program.stage.id)
            if count != program.announced_viewers:
                program.announced_viewers = count
                program.fanout.broadcast({"type": "viewers", "stage": program.stage.id, "count": count})
        self.gauges_once()

    def gauges_once(self) -> None:
        """The inputs' and stages' gauges: bitrate, keyframe interval and fragment age of the
        inputs published here, which inputs the live sessions expect, viewers behind."""
        hub = self._hub
        metrics = hub.env.metrics
        now = self._clock.monotonic()
        expected: set[str] = set()
        for program in hub.programs.values():
            session = hub.scheduler.status(program.stage.id).current
            expected |= on_bill(session, program.automation.default_input)
            self._session_gauge(program.stage.id, session)
            behind = sum(1 for viewer in program.fanout.viewers if viewer.gate.behind_since is not None)
            metrics.viewers_behind.labels(stage=program.stage.id).set(behind)
        for live in hub.inputs.values():
            metrics.input_bitrate.labels(input=live.id).set(live.bitrate(now) / 8)
            metrics.input_expected.labels(input=live.id).set(1 if live.id in expected else 0)
            age = live.fragment_age(now)
            if live.publisher is None or age is None:
                # no publisher here: another instance (or nobody) reports this input
                for gauge in (metrics.input_keyframe_interval, metrics.input_fragment_age):
                    with contextlib.suppress(KeyError):  # absent: older prometheus-clients raise
                        gauge.remove(live.id)
                continue
            metrics.input_fragment_age.labels(input=live.id).set(age)
            if live.gop_seconds is not None:
                metrics.input_keyframe_interval.labels(input=live.id).set(live.gop_seconds)

    def _session_gauge(self, stage: str, session: Session | None) -> None:
        """``forumcast_stage_session{stage,session,title}`` 1 for the running session only."""
        gauge = self._hub.env.metrics.stage_session
        now = None if session is None else (session.id, session.title.en or session.title.zh)
        before = self._sessions.get(stage)
        if now == before:
            return
        if before is not None:
            with contextlib.suppress(KeyError):
                gauge.remove(stage, *before)
            del self._sessions[stage]
        if now is not None:
            gauge.labels(stage, *now).set(1)
            self._sessions[stage] = now

    async def stalls(self) -> None:
        await self._every(self._settings.stall_check_interval, self.stalls_once)

    def stalls_once(self) -> None:
        hub = self._hub
        now = self._clock.monotonic()
        for live in hub.sources.values():
            live.preview.drop_stalled(now)
        for program in hub.programs.values():
            if dropped := program.fanout.drop_stalled(now):
                hub.env.metrics.relay_stalled.labels(stage=program.stage.id).inc(dropped)

    async def stats(self) -> None:
        await self._every(self._settings.stats_interval, self.stats_once)

    def stats_once(self) -> None:
        hub = self._hub
        now = self._clock.monotonic()
        watching: dict[str, int] = {}
        for program in hub.programs.values():
            if program.source is not None:
                watching[program.source] = watching.get(program.source, 0) + program.viewer_count
        for live in hub.inputs.values():
            if live.publisher is None:
                continue
            age = live.fragment_age(now)
            live.publisher.notify(
                {
                    "type": "stats",
                    "bitrate": round(live.bitrate(now)),
                    "fragment_age": None if age is None else round(age, 3),
                    "viewers": watching.get(live.id, 0),
                    "preview_viewers": len(hub.sources[live.id].preview.viewers) + live.remote_previews,
                }
            )

    async def schedule_events(self) -> None:
        hub = self._hub
        with self._bus.subscribe() as subscription:
            async for event in subscription:
                program = hub.programs.get(event.stage or "")
                if event.type not in SCHEDULE_EVENTS or program is None:
                    continue
                hub.supervise(program)
                program.slate.prefetch()  # the slate's "next" line changed
                program.fanout.broadcast(hub.now_message(program.stage.id))
