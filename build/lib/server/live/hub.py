"""Every live input and stage program of the event, wired together.

The hub builds one :class:`~server.live.inputs.LiveInput` per declared input, one
:class:`~server.live.program.Program` per stage (with its slate and its LL-HLS output) and
finds them for the handlers. Decisions live in the objects it holds: a take is validated and
applied by :meth:`Program.take`; the periodic work (supervision, viewer counts, stats, the
schedule's ``now`` events) runs in :mod:`server.live.ticks`; stream keys are checked by
:class:`server.stream_keys.StreamKeys`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from server.errors import ForumcastError
from server.live.admission import Admission
from server.live.hls import HlsMeters, HlsOutput, epoch
from server.live.hls_audience import Audience, MemoryAudience
from server.live.inputs import LiveInput
from server.live.program import Program
from server.live.settings import LiveEnv
from server.live.slate import SlateLibrary
from server.live.slate_card import SlateCard
from server.live.slate_text import stage_card
from server.media.hls import Packager
from server.media.switcher import Cut
from server.schedule.model import Event, Stage
from server.schedule.render import now_json
from server.schedule.scheduler import Scheduler


class Cluster(Protocol):
    """What the hub asks of the cluster when instances share the event (see server.cluster)."""

    def program_state(self, program: Program) -> dict[str, Any]:
        """What ``program`` shows, as its leader says, with the viewers of every instance."""

    def viewers(self, stage_id: str) -> int:
        """The stage's WebSocket viewers on every live instance."""

    def leads(self, stage_id: str) -> bool:
        """Whether this instance makes the stage's program now."""

    def announce(self, program: Program) -> None:
        """The program (led here) changed what it shows: tell every instance."""

    async def command(self, stage_id: str, op: str, source: str, cut: Cut) -> None:
        """Carry out a producer's take (``op`` "take") or return to automation ("auto")
        on the stage's leader, wherever it is; raise its refusal."""


class LiveHub:
    def __init__(
        self,
        scheduler: Scheduler,
        env: LiveEnv,
        *,
        slates: SlateLibrary | None = None,
        mirrored: bool = False,
    ) -> None:
        """``mirrored``: instances share the event, so the programs watch *mirrors* of the
        inputs (read back from Redis, wherever their publishers are) instead of the inputs
        publishers connect to here."""
        self.scheduler = scheduler
        self.env = env
        self.slates = slates or SlateLibrary()
        settings = env.settings
        #: Viewer connections held, by client address (checked before every upgrade).
        self.admission = Admission(per_ip=settings.max_viewers_per_ip, total=settings.max_viewers)
        self.inputs = {d.id: LiveInput(d, env) for d in scheduler.event.inputs()}
        #: What the programs and previews watch: the inputs themselves, or their mirrors.
        self.sources = (
            {d.id: LiveInput(d, env, mirror=True) for d in scheduler.event.inputs()}
            if mirrored
            else self.inputs
        )
        #: Set by the cluster when instances share the event.
        self.cluster: Cluster | None = None
        #: This run's tag in LL-HLS media URLs.
        self.hls_epoch = epoch(env.clock.wall())
        self.programs: dict[str, Program] = {}
        self.hls: dict[str, HlsOutput] = {}
        #: Who watches over LL-HLS (in Redis when a cluster shares the event: it sets this).
        self.hls_audience: Audience = MemoryAudience()
        for stage in scheduler.event.stages:
            self._add_program(stage)
        for live in self.sources.values():
            live.on_gone.append(self._input_gone)

    def _add_program(self, stage: Stage) -> None:
        env = self.env
        program = Program(
            stage,
            {d.id: self.sources[d.id] for d in stage.inputs},
            env,
            self.slates,
            card=lambda: self.slate_card(stage.id),
            on_switch=self._switched,
        )
        settings = env.settings
        packager = Packager(
            target_duration=settings.hls_target_duration,
            window=settings.hls_window,
            part_target=settings.hls_part_target,
            prefix=f"{self.hls_epoch}/",
        )
        metrics = env.metrics
        meters = HlsMeters(
            waited=metrics.hls_reload_wait.labels(stage=stage.id).observe,
            rendered=metrics.hls_renders.labels(stage=stage.id).inc,
            waiting=metrics.hls_waiting.labels(stage=stage.id).set,
            viewers=metrics.viewers.labels(stage=stage.id, protocol="hls").set,
            clients=metrics.hls_clients.labels(stage=stage.id).set,
        )
        output = HlsOutput(packager, env.clock, meters=meters)
        program.outputs.append(output)
        self.programs[stage.id] = program
        self.hls[stage.id] = output

    @property
    def event(self) -> Event:
        return self.scheduler.event

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

    def preview(self, input_id: str) -> LiveInput:
        """What a producer previewing ``input_id`` watches (its mirror, in a cluster)."""
        self.input(input_id)
        return self.sources[input_id]

    def program_state(self, stage_id: str) -> dict[str, Any]:
        """What the stage's program shows (its leader's word, in a cluster)."""
        program = self.program(stage_id)
        return program.state_json() if self.cluster is None else self.cluster.program_state(program)

    def viewer_count(self, stage_id: str) -> int:
        """The stage's WebSocket viewers (on every instance, in a cluster)."""
        if self.cluster is not None:
            return self.cluster.viewers(stage_id)
        return self.program(stage_id).viewer_count

    async def hls_heard(self, stage_id: str, viewer: str) -> None:
        """A heartbeat of an LL-HLS player (its id checked) on the stage."""
        await self.hls_audience.heard(stage_id, viewer, self.env.clock.wall())

    async def count_hls(self) -> None:
        """Count every stage's LL-HLS audience (one round trip in a cluster) and hand each
        output its :class:`~server.live.hls_audience.Tally`."""
        hls = self.hls
        windows = {stage: output.window for stage, output in hls.items()}
        fetched = {stage: output.take_fetched() for stage, output in hls.items()}
        tallies = await self.hls_audience.count(windows, fetched, self.env.clock.wall())
        for stage, tally in tallies.items():
            hls[stage].tallied(tally)

    def now_message(self, stage_id: str) -> dict[str, Any]:
        """The ``now`` event of a stage: its schedule state and what its program shows."""
        return now_json(stage_id, self.scheduler.status(stage_id), self.event, self.program_state(stage_id))

    def slate_card(self, stage_id: str) -> SlateCard:
        return stage_card(self.event, stage_id, self.scheduler.status(stage_id))

    def leads(self, stage_id: str) -> bool:
        """Whether this instance makes the stage's program (always, without a cluster)."""
        return self.cluster is None or self.cluster.leads(stage_id)

    async def take(self, stage_id: str, source: str, *, cut: Cut = Cut.KEYFRAME) -> Program:
        """A producer's take of ``source`` (an input of the stage, or the slate), carried
        out by the stage's leader (here, or the instance leading it)."""
        program = self.program(stage_id)
        if self.cluster is not None and not self.cluster.leads(stage_id):
            await self.cluster.command(stage_id, "take", source, cut)
        else:
            program.take(source, cut=cut)
        return program

    async def resume(self, stage_id: str) -> Program:
        """Back to the schedule's automation (on the stage's leader)."""
        program = self.program(stage_id)
        if self.cluster is not None and not self.cluster.leads(stage_id):
            await self.cluster.command(stage_id, "auto", "", Cut.KEYFRAME)
        else:
            program.resume(self.scheduler.status(stage_id).current)
        return program

    def supervise(self, program: Program, now: float | None = None) -> None:
        """Let the program's automation look at its session and inputs now (only where it
        is made: a follower's program shows what its leader decides)."""
        if self.leads(program.stage.id):
            program.supervise(self.scheduler.status(program.stage.id).current, now)

    def _switched(self, program: Program) -> None:
        if self.cluster is not None:
            self.cluster.announce(program)
        else:
            program.fanout.broadcast(self.now_message(program.stage.id))

    def _input_gone(self, live: LiveInput) -> None:
        program = self.programs.get(live.decl.stage)
        if program is not None:
            program.input_gone(live)
            self.supervise(program)

    async def close(self) -> None:
        """Going away: every viewer and WebSocket publisher is closed with 1001."""
        closing = []
        for program in self.programs.values():
            await program.slate.close()
            closing += [
                v.ws.close(code=1001, message=b"server shutting down") for v in program.fanout.viewers
            ]
        for live in self.sources.values():
            closing += [v.ws.close(code=1001, message=b"server shutting down") for v in live.preview.viewers]
        for live in self.inputs.values():
            if live.publisher is not None:
                live.publisher.kick("live.shutting_down", "server shutting down")
        await asyncio.gather(*closing, return_exceptions=True)
        await asyncio.gather(*(output.close() for output in self.hls.values()))
        await self.slates.close()
