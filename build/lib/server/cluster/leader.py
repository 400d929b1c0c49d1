"""Leading stages: the lease loop, and the program of each stage led here written to Redis.

:class:`Leadership` is one loop per instance (a supervised task). Every ``RENEW_INTERVAL``
it renews the leases it holds and looks at the others; a free lease is taken after this
instance's rendezvous rank times :data:`~server.cluster.lease.RANK_DELAY`, so the stages
spread over the instances and the preferred one wins a race. A lease that cannot be renewed
before it may have expired (by our clock, with a margin) is given up.

Taking the lead of a stage (:meth:`Leadership.step_up`) picks up where the last leader
stopped: the inputs' mirrors are caught up on their GOPs, the program stream is replayed
into the leader's *shadow* LL-HLS packager (so part and segment numbers go on), the switcher
continues the program's timeline after the last fragment in Redis (decode times never go
back; no re-init when the decoder configuration is the same) and the producer's mode (a
manual take) is restored; the input on air in the last fragment goes on unspliced where
it can (:func:`~server.cluster.writer.continuation`). From then on the program's outputs go
to a :class:`~server.cluster.writer.StageWriter`: once the lease is someone else's, nothing
more is written, and this instance steps down.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from server.clock import Clock
from server.cluster.edge import Edge
from server.cluster.entries import ProgramEntry, ProgramKind
from server.cluster.lease import (
    LEASE_TTL,
    RENEW_INTERVAL,
    Term,
    acquire_delay,
    lease_value,
    parse_lease,
    preference,
)
from server.cluster.plane import Plane
from server.cluster.replica import (
    NewFragment,
    NewInit,
    NewSource,
    ProgramReplica,
    add_to,
    end_of,
)
from server.cluster.writer import StageWriter, continuation
from server.errors import ForumcastError
from server.live.automation import Mode
from server.live.hub import LiveHub
from server.live.program import Program
from server.media.hls import Packager
from server.media.switcher import Output, Switcher

log = logging.getLogger("forumcast.cluster")

#: Entries a program stream keeps, in LL-HLS windows: enough for a late edge to fill its own.
WINDOWS_KEPT = 2
#: Seconds an instance waits at start before it leads anything (it hears of the others first).
SETTLE = 1.5
#: Seconds between two hand-overs of a stage to the instance that should lead it.
REBALANCE_EVERY = 5.0


def _discard(outputs: list[Output]) -> None:
    """A follower's program makes nothing: its viewers get the leader's."""


class Leadership:
    def __init__(
        self,
        plane: Plane,
        hub: LiveHub,
        edge: Edge,
        clock: Clock,
        *,
        live_instances: Callable[[], list[str]],
        announce: Callable[[Program], None],
        ttl: float = LEASE_TTL,
        renew_interval: float = RENEW_INTERVAL,
        settle: float = SETTLE,
    ) -> None:
        self._plane = plane
        self._hub = hub
        self._edge = edge
        self._clock = clock
        self._live_instances = live_instances
        self._announce = announce
        self.ttl = ttl
        self.renew_interval = renew_interval
        self.terms: dict[str, Term] = {}
        self.writers: dict[str, StageWriter] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Every stage's leader as last seen: (instance, epoch), or None.
        self.leaders: dict[str, tuple[str, int] | None] = dict.fromkeys(hub.programs)
        for stage in hub.programs:
            hub.env.metrics.stage_leader.labels(stage=stage).set(0)
        self._free_since: dict[str, float] = {}
        self._rebalanced = clock.monotonic()
        self._handed: dict[str, float] = {}
        #: Seconds to wait at start before taking any lease.
        self.settle = settle
        settings = hub.env.settings
        per_window = settings.hls_window * settings.hls_target_duration / settings.hls_part_target
        self._maxlen = int(WINDOWS_KEPT * per_window) + 20
        for program in hub.programs.values():
            program.sink = _discard

    def leads(self, stage: str) -> bool:
        return stage in self.terms

    async def run(self) -> None:
        """Renew, give up and take leases, forever (a supervised task)."""
        # Instances starting together first hear of each other, so the stages spread.
        await self._clock.sleep(self.settle)
        try:
            while True:
                await self.tick()
                await self._clock.sleep(self.renew_interval / 2)
        finally:
            for stage in list(self.terms):
                self.step_down(stage, "shutting down")

    async def tick(self) -> None:
        clock, names, instance = self._clock, self._plane.names, self._plane.instance
        for stage, term in list(self.terms.items()):
            writer = self.writers[stage]
            if writer.lost.is_set():
                self.step_down(stage, "lease lost (fenced)")
                continue
            now = clock.monotonic()
            if now - term.renewed >= self.renew_interval:
                try:
                    renewed = await self._plane.renew(names.lease(stage), term.epoch, self.ttl)
                except (RedisError, OSError) as exc:
                    log.warning("stage %s: could not renew the lease (%s)", stage, exc)
                else:
                    if not renewed:
                        self.step_down(stage, "lease lost")
                        continue
                    term.renewed = now
            if not term.valid(clock.monotonic()):
                self.step_down(stage, "lease expired before it could be renewed")
        others = [stage for stage in self._hub.programs if stage not in self.terms]
        try:
            values = await self._plane.leases([names.lease(stage) for stage in others])
        except (RedisError, OSError):
            return
        now = clock.monotonic()
        live = self._live_instances()
        self._rebalance(now, live)
        for stage, value in zip(others, values, strict=True):
            self._seen(stage, parse_lease(value))
            if value is not None:
                self._free_since.pop(stage, None)
                continue
            since = self._free_since.setdefault(stage, now)
            if now - since < acquire_delay(stage, instance, live):
                continue
            if now - self._handed.get(stage, -REBALANCE_EVERY) < REBALANCE_EVERY:
                continue  # just handed over: give the other instance time to take it
            try:
                sent = clock.monotonic()
                epoch = await self._plane.acquire(names.lease(stage), names.epoch(stage), self.ttl)
                if epoch:
                    await self.step_up(stage, epoch, sent)
            except (RedisError, OSError) as exc:
                log.warning("stage %s: could not take the lead (%s)", stage, exc)
                if stage in self.terms:
                    self.step_down(stage, "Redis failed while taking the lead")

    def _seen(self, stage: str, leader: tuple[str, int] | None) -> None:
        """The stage's leader as seen now; its epoch stays on the gauge while none leads
        (epochs only grow: a dashboard sees each new term as a step)."""
        self.leaders[stage] = leader
        if leader is not None:
            self._hub.env.metrics.stage_leader_epoch.labels(stage=stage).set(leader[1])

    def _rebalance(self, now: float, live: list[str]) -> None:
        """Hand over one stage that another live instance should lead, if this one leads
        more than its share (after instances joined); at most one per :data:`REBALANCE_EVERY`."""
        if now - self._rebalanced < REBALANCE_EVERY or len(live) < 2:
            return
        share = -(-len(self._hub.programs) // len(live))
        if len(self.terms) <= share:
            return
        instance = self._plane.instance
        for stage in sorted(self.terms):
            if preference(stage, live)[0] != instance:
                self._rebalanced = self._handed[stage] = now
                self.step_down(stage, f"handing over to {preference(stage, live)[0]} (rebalancing)")
                return

    async def step_up(self, stage: str, epoch: int, sent: float) -> None:
        hub, plane = self._hub, self._plane
        program = hub.programs[stage]
        self.terms[stage] = Term(epoch, lease_value(plane.instance, epoch), sent, self.ttl)
        self._free_since.pop(stage, None)
        self._seen(stage, (plane.instance, epoch))
        program.switcher = switcher = Switcher()
        await self._edge.watch_inputs(d.id for d in program.stage.inputs)
        for id_, live in program.inputs.items():  # what the mirrors have, the switcher needs
            if live.init is not None and live.publisher is not None:
                switcher.source_init(id_, live.init)
        shadow, replica = await self._shadow(stage)
        local = self._edge.replicas[stage]
        # the newer of what the stream holds and what this instance read: the stream may be
        # gone (Redis restarted empty) or behind (a replica promoted before it had it all)
        behind = end_of(replica.last) < end_of(local.last)
        newest = local if behind else replica
        init = newest.init or replica.init or local.init
        if (behind or not replica.in_step) and local.in_step:
            shadow = copy.deepcopy(hub.hls[stage].packager)
        if init is not None and shadow.init is None:
            shadow.set_init(init)  # the stream lost its init (Redis restarted empty): ours, then
        continued, offsets = None, None
        mirror = program.inputs.get(newest.last_source)
        if mirror is not None and mirror.publisher is not None:
            offsets = continuation(
                newest.last_offsets, newest.last_publisher, mirror.placement, mirror.publisher.remote
            )
            continued = newest.last_source if offsets is not None else None
        if init is not None:
            switcher.resume(init, newest.last, source=continued, offsets=offsets)
        control = await plane.get_json(plane.names.program_control(stage))
        program.automation.resume()
        if isinstance(control, dict) and control.get("mode") == Mode.MANUAL.value and control.get("source"):
            program.automation.take(str(control["source"]))
        # the program's wall clock (its LL-HLS dates) is the service's, like a single instance's
        writer = StageWriter(
            plane, program, epoch, shadow, self._clock, wall=hub.env.clock.wall, maxlen=self._maxlen
        )
        self.writers[stage] = writer
        program.sink = writer.sink
        if continued is not None and switcher.current == continued:
            # what the last leader had not sent yet is in the mirror's cache: out at once
            program.catch_up(continued)
        self._tasks[stage] = asyncio.create_task(writer.run(), name=f"cluster-write-{stage}")
        hub.env.metrics.stage_leader.labels(stage=stage).set(1)
        hub.env.metrics.leader_changes.labels(stage=stage).inc()
        log.info("stage %s: leading (epoch %d)", stage, epoch)
        hub.supervise(program)
        self._announce(program)

    async def _shadow(self, stage: str) -> tuple[Packager, ProgramReplica]:
        """A packager replayed from the program stream, in step with the last leader's."""
        settings = self._hub.env.settings
        shadow = Packager(
            target_duration=settings.hls_target_duration,
            window=settings.hls_window,
            part_target=settings.hls_part_target,
        )
        replica = ProgramReplica(max_box_size=settings.max_box_size)
        init, entries = await self._plane.program_history(stage)
        feed = [ProgramEntry(ProgramKind.INIT, 0, init)] if init else []
        for _, fields in entries:
            try:
                feed.append(ProgramEntry.parse(fields))
            except ForumcastError:
                continue
        for entry in feed:
            try:
                change = replica.apply(entry)
            except ForumcastError:
                continue
            if isinstance(change, NewInit):
                shadow.set_init(change.init)
            elif isinstance(change, NewSource):
                shadow.discontinuity()
            elif isinstance(change, NewFragment) and change.hls is not None:
                replica.check(change.hls, add_to(shadow, change.fragment, change.hls))
        return shadow, replica

    def step_down(self, stage: str, why: str) -> None:
        term = self.terms.pop(stage, None)
        if term is None:
            return
        self.writers.pop(stage, None)
        task = self._tasks.pop(stage, None)
        if task is not None:
            task.cancel()
        program = self._hub.programs[stage]
        program.sink = _discard
        program.slate.stop()
        self._hub.env.metrics.stage_leader.labels(stage=stage).set(0)
        self.leaders[stage] = None
        log.warning("stage %s: no longer leading (epoch %d): %s", stage, term.epoch, why)
        if term.valid(self._clock.monotonic()):
            asyncio.get_running_loop().create_task(self._release(stage, term.epoch))

    async def _release(self, stage: str, epoch: int) -> None:
        with contextlib.suppress(RedisError, OSError):  # else it expires on its own
            await self._plane.release(self._plane.names.lease(stage), epoch)
