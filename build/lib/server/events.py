"""The in-process event bus: schedule and program events to whoever listens.

Publishers never wait: each subscriber has a bounded queue and, when it is full, loses its
oldest event (counted in ``dropped``) rather than slowing the publisher. The WebSocket layer
subscribes and turns events into frames; with Redis, a bridge will relay them between
instances.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class BusEvent:
    """Something that happened: ``type`` is dotted (``session.started``, ``stage.delayed``)."""

    type: str
    at: datetime
    stage: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "at": self.at.isoformat(), "stage": self.stage, **self.data}


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[BusEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _offer(self, event: BusEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> BusEvent:
        return await self._queue.get()

    def get_nowait(self) -> BusEvent | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        self._bus._subscribers.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[BusEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[BusEvent]:
        while True:
            yield await self.get()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self, *, maxsize: int = 1000) -> Subscription:
        """A new subscription that keeps at most ``maxsize`` undelivered events."""
        subscription = Subscription(self, maxsize)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, event: BusEvent) -> None:
        for subscription in list(self._subscribers):
            subscription._offer(event)
