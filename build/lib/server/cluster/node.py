"""One instance's part in the cluster: the hub's :class:`~server.live.hub.Cluster`, built
from the edge, the origins, the leases, the registry and the control channel.

The app factory makes a :class:`ClusterNode` when a Redis is configured and runs its loops
as supervised tasks (:meth:`ClusterNode.loops`). What it answers the hub:

- what a program shows: on the leader, the program itself; elsewhere, the leader's last
  announced state (kept in Redis too, re-read after a reconnection), with the viewers of
  every live instance;
- a producer's take or return to automation on a stage led elsewhere: forwarded to the
  leader, its answer (or refusal) returned as if made here;
- the LL-HLS audience: heartbeats and client addresses counted in Redis
  (:class:`~server.cluster.hls_audience.RedisAudience`), so a player whose heartbeats land
  on several instances counts once;
- tallies: the leader announces what is on air, and the instance holding that input's
  publisher tells it; previews anywhere light its PREVIEW tally.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from server.clock import Clock
from server.cluster.control import Control
from server.cluster.edge import Edge
from server.cluster.hls_audience import RedisAudience
from server.cluster.leader import Leadership
from server.cluster.origin import Origins
from server.cluster.plane import Plane
from server.cluster.registry import Registry
from server.errors import ForumcastError
from server.events import BusEvent, EventBus
from server.live.hub import LiveHub
from server.live.program import Program
from server.media.switcher import Cut
from server.schedule.service import ScheduleService

log = logging.getLogger("forumcast.cluster")

#: Seconds between looks at what to read and what to announce.
TICK = 0.2
#: Seconds a command waits for a stage to have a leader (one may be taking over).
LEADER_WAIT = 3.0
#: Bus events every instance must hear, wherever they happened.
SHARED_EVENTS = frozenset({"stage.delayed"})


class ClusterNode:
    def __init__(
        self,
        hub: LiveHub,
        plane: Plane,
        clock: Clock,
        bus: EventBus,
        schedule: ScheduleService,
        *,
        address: str,
        started: str,
    ) -> None:
        self.hub = hub
        self.plane = plane
        self._clock = clock
        self._bus = bus
        self._schedule = schedule
        self.address = address
        self.started = started
        self.edge = Edge(plane, hub, clock)
        self.origins = Origins(plane, hub.inputs, clock)
        self.registry = Registry(plane, clock, describe=self._describe)
        self.leadership = Leadership(
            plane, hub, self.edge, clock, live_instances=self.registry.live_ids, announce=self.announce
        )
        self.control = Control(
            plane, clock, on_event=self._on_event, on_request=self._on_request, on_reconnect=self._resync
        )
        #: Each stage's state as its leader last announced it: (epoch, state).
        self.states: dict[str, tuple[int, dict[str, Any]]] = {}
        self._announced: dict[str, dict[str, Any]] = {}
        self._echo: set[int] = set()  # ids of bus events that came from other instances
        hub.cluster = self
        hub.hls_audience = RedisAudience(plane, instances=self.registry.live_ids)

    @property
    def instance(self) -> str:
        return self.plane.instance

    async def start(self) -> None:
        """Before serving: the shared LL-HLS tag, the programs caught up, a first heartbeat."""
        epoch = await self.plane.set_once(self.plane.names.hls_epoch, self.hub.hls_epoch)
        self.hub.hls_epoch = epoch
        for output in self.hub.hls.values():
            output.packager.prefix = f"{epoch}/"
        await self.edge.start()
        await self._resync()
        await self.registry.beat()

    def loops(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """The node's long-lived tasks, by name, for the app's supervisor."""
        return {
            "cluster-edge": self.edge.run,
            "cluster-origins": self.origins.run,
            "cluster-registry": self.registry.run,
            "cluster-leases": self.leadership.run,
            "cluster-control": self.control.run,
            "cluster-tick": self._ticks,
            "cluster-bus": self._forward_bus,
        }

    async def close(self) -> None:
        await self.registry.leave()
        await self.plane.close()

    # -- the hub's Cluster protocol ---------------------------------------------------------

    def leads(self, stage_id: str) -> bool:
        return self.leadership.leads(stage_id)

    def viewers(self, stage_id: str) -> int:
        return self.registry.total("viewers", stage_id, "ws")

    def program_state(self, program: Program) -> dict[str, Any]:
        stage = program.stage.id
        if self.leads(stage):
            state = program.state_json()
        else:
            known = self.states.get(stage)
            state = dict(known[1]) if known else _unknown_state()
        state["viewers"] = self.viewers(stage)
        leader = self.leadership.leaders.get(stage)
        state["leader"] = None if leader is None else {"instance": leader[0], "epoch": leader[1]}
        return state

    def announce(self, program: Program) -> None:
        writer = self.leadership.writers.get(program.stage.id)
        if writer is None:
            return
        state = program.state_json()
        state.pop("viewers", None)
        self._announced[program.stage.id] = state
        automation = program.automation
        writer.announce(state, {"mode": automation.mode.value, "source": automation.manual})

    async def command(self, stage_id: str, op: str, source: str, cut: Cut) -> None:
        deadline = self._clock.monotonic() + LEADER_WAIT
        while True:
            if self.leads(stage_id):  # took the lead meanwhile
                await (
                    self.hub.take(stage_id, source, cut=cut) if op == "take" else self.hub.resume(stage_id)
                )
                return
            leader = self.leadership.leaders.get(stage_id)
            if leader is not None:
                break
            if self._clock.monotonic() > deadline:
                raise ForumcastError("cluster.no_leader", f"no instance leads stage {stage_id!r} now")
            await self._clock.sleep(0.1)
        message = {"op": op, "stage": stage_id, "source": source, "cut": cut.value}
        reply = await self.control.request(leader[0], message)
        state = reply.get("state")
        if isinstance(state, dict):  # the reply's state, at once (the event may come later)
            self._remember(stage_id, int(reply.get("epoch", 0)), state)

    # -- what comes from other instances ----------------------------------------------------

    async def _on_request(self, request: dict[str, Any]) -> dict[str, Any]:
        stage = str(request.get("stage"))
        if not self.leads(stage):
            raise ForumcastError("cluster.no_leader", f"{self.instance} does not lead stage {stage!r} now")
        if request.get("op") == "take":
            try:
                cut = Cut(request.get("cut", Cut.KEYFRAME.value))
            except ValueError:
                raise ForumcastError("program.bad_take", "'cut' must be 'keyframe' or 'cached'") from None
            await self.hub.take(stage, str(request.get("source")), cut=cut)
        else:
            await self.hub.resume(stage)
        program = self.hub.programs[stage]
        self.announce(program)
        state = program.state_json()
        state.pop("viewers", None)
        return {"ok": True, "state": state, "epoch": self.leadership.terms[stage].epoch}

    def _on_event(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "state":
            state = message.get("state")
            if isinstance(state, dict):
                self._remember(str(message.get("stage")), int(message.get("epoch", 0)), state)
        elif kind == "bus" and message.get("from") != self.instance:
            event = message.get("event")
            if isinstance(event, dict):
                asyncio.get_running_loop().create_task(self._remote_bus(event))

    async def _remote_bus(self, event: dict[str, Any]) -> None:
        """A schedule change made on another instance: reload, and tell our listeners."""
        try:
            await self._schedule.load()
        except ForumcastError as exc:
            log.warning("cluster: could not reload the schedule: %s", exc.message)
        local = BusEvent(
            str(event.get("type")),
            datetime.fromisoformat(str(event.get("at"))),
            event.get("stage"),
            {k: v for k, v in event.items() if k not in ("type", "at", "stage")},
        )
        self._echo.add(id(local))
        self._bus.publish(local)

    def _remember(self, stage: str, epoch: int, state: dict[str, Any]) -> None:
        known = self.states.get(stage)
        if known is not None and known[0] > epoch:
            return  # a former leader's word
        changed = known is None or known[1] != state
        self.states[stage] = (epoch, state)
        if not changed or stage not in self.hub.programs:
            return
        program = self.hub.programs[stage]
        program.fanout.broadcast(self.hub.now_message(stage))
        source = state.get("source")
        for decl in program.stage.inputs:
            live = self.hub.inputs[decl.id]
            live.on_air = decl.id == source
            live.tally()

    async def _resync(self) -> None:
        """After (re)subscribing: the states announced while we were not listening."""
        names = self.plane.names
        stages = list(self.hub.programs)
        try:
            states = await self.plane.get_many_json(names.program_state(s) for s in stages)
        except (RedisError, OSError):
            return
        for stage, state in zip(stages, states, strict=True):
            if isinstance(state, dict):
                self._remember(stage, self.states.get(stage, (0, {}))[0], state)

    # -- periodic ---------------------------------------------------------------------------

    async def _ticks(self) -> None:
        while True:
            await self._tick()
            await self._clock.sleep(TICK)

    async def _tick(self) -> None:
        hub = self.hub
        for stage in list(self.leadership.terms):  # a leader announces whatever changed
            program = hub.programs[stage]
            state = program.state_json()
            state.pop("viewers", None)
            if state != self._announced.get(stage):
                self.announce(program)
        wanted = {d.id for stage in self.leadership.terms for d in hub.programs[stage].stage.inputs}
        wanted |= {id_ for id_, mirror in hub.sources.items() if mirror.preview.viewers}
        try:
            await self.edge.watch_inputs(sorted(wanted - set(self.edge.mirrors)))
        except (RedisError, OSError) as exc:
            log.warning("cluster: could not start reading inputs (%s)", exc)
        self.edge.unwatch_inputs(sorted(set(self.edge.mirrors) - wanted))
        for input_id, live in hub.inputs.items():
            elsewhere = self.registry.total("previews", input_id) - len(hub.sources[input_id].preview.viewers)
            if elsewhere != live.remote_previews:
                live.remote_previews = elsewhere
                live.tally()
        hub.env.metrics.cluster_instances.set(len(self.registry.live_ids()))

    async def _forward_bus(self) -> None:
        with self._bus.subscribe() as subscription:
            async for event in subscription:
                if event.type not in SHARED_EVENTS or id(event) in self._echo:
                    self._echo.discard(id(event))
                    continue
                try:
                    await self.control.publish(
                        {"type": "bus", "from": self.instance, "event": event.to_json()}
                    )
                except (RedisError, OSError) as exc:
                    log.warning("cluster: could not share %s (%s)", event.type, exc)

    def _describe(self) -> dict[str, Any]:
        hub = self.hub
        return {
            "address": self.address,
            "started": self.started,
            "viewers": {
                stage: {"ws": program.viewer_count, "hls": hub.hls[stage].tally.here}
                for stage, program in hub.programs.items()
            },
            "publishers": sorted(id_ for id_, live in hub.inputs.items() if live.publisher is not None),
            "previews": {id_: len(m.preview.viewers) for id_, m in hub.sources.items() if m.preview.viewers},
            "leads": sorted(self.leadership.terms),
        }


def _unknown_state() -> dict[str, Any]:
    """What a follower says before it heard from the stage's leader."""
    return {
        "source": None,
        "slate": True,
        "mode": "auto",
        "reason": "schedule",
        "since": None,
        "pending": None,
        "session": None,
        "viewers": 0,
    }
