"""The program as it stands now: the loaded event plus every producer delay, kept in the store.

:class:`ScheduleService` is the one owner of "the effective event". It replays the delays
recorded in the store at start-up (so a restart or a second instance sees the same program),
records new ones, and tells its listeners (the scheduler) that the program changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from server.errors import ForumcastError
from server.events import BusEvent, EventBus
from server.schedule.delays import Delay, apply_delay, check_minutes, replay
from server.schedule.model import Event
from server.store.base import Store

log = logging.getLogger("forumcast.schedule")


class ScheduleService:
    def __init__(self, event: Event, store: Store, bus: EventBus) -> None:
        self.base = event
        self.event = event
        self._store = store
        self._bus = bus
        self._listeners: list[Callable[[], None]] = []
        #: Net minutes each stage has been delayed by (stages without delays are absent).
        self.delay_totals: dict[str, int] = {}

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _key(self, stage: str) -> str:
        return f"delays:{stage}"

    async def load(self) -> None:
        """Rebuild the effective program from the delays recorded in the store."""
        recorded: list[Delay] = []
        for stage in self.base.stages:
            recorded.extend(Delay.from_json(item) for item in await self._store.items(self._key(stage.id)))
        recorded.sort(key=lambda d: d.at)
        self.event = replay(self.base, recorded)
        self.delay_totals = {}
        for delay in recorded:
            self.delay_totals[delay.stage] = self.delay_totals.get(delay.stage, 0) + delay.minutes
        if recorded:
            log.info("replayed %d recorded delay(s)", len(recorded))
        self._changed()

    def require_stage(self, stage: str) -> None:
        if self.event.stage(stage) is None:
            raise ForumcastError("schedule.unknown_stage", f"no stage {stage!r}")

    async def delay(self, stage: str, minutes: object, *, at: datetime, by: str = "") -> Delay:
        """Delay ``stage`` by ``minutes`` from instant ``at``; persist it and announce it."""
        self.require_stage(stage)
        delay = Delay(stage, at, check_minutes(minutes), by)
        updated = apply_delay(self.event, delay)  # raises schedule.delay_conflict
        await self._store.append(self._key(stage), delay.to_json())
        self.event = updated
        total = self.delay_totals[stage] = self.delay_totals.get(stage, 0) + delay.minutes
        log.info("stage %s delayed by %+d min (total %+d) by %s", stage, delay.minutes, total, by or "?")
        self._bus.publish(
            BusEvent("stage.delayed", at, stage, {"minutes": delay.minutes, "total_minutes": total, "by": by})
        )
        self._changed()
        return delay

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()
