"""Fair turns at the worker pool: which waiting job gets the next free worker.

The process pool would run jobs in the order they were submitted, so six large uploads of
one exhibitor would make everyone else's small one wait for all six. :class:`FairSlots`
hands out as many slots as there are workers and, when one frees up, gives it to the
owner (an exhibit, the demo models, the hall) with the fewest jobs running, the one
served longest ago among equals: round-robin across owners, first come first served
within one owner.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Waiter:
    owner: str
    order: int
    granted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class FairSlots:
    """``slots`` concurrent holders; waiters are granted round-robin across owners."""

    def __init__(self, *, slots: int = 2) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self._running: dict[str, int] = {}
        self._waiting: list[_Waiter] = []
        self._served: dict[str, int] = {}
        self._turns = itertools.count()

    @property
    def busy(self) -> int:
        """Slots held now."""
        return sum(self._running.values())

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @asynccontextmanager
    async def slot(self, owner: str) -> AsyncIterator[None]:
        """Hold one slot for ``owner`` while the block runs (waiting for a turn first)."""
        if self.busy < self.slots and not self._waiting:
            self._take(owner)
        else:
            waiter = _Waiter(owner, next(self._turns))
            self._waiting.append(waiter)
            try:
                await waiter.granted
            except asyncio.CancelledError:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
                elif waiter.granted.done() and not waiter.granted.cancelled():
                    self._release(owner)  # granted and cancelled in the same turn: pass it on
                raise
        try:
            yield
        finally:
            self._release(owner)

    def _take(self, owner: str) -> None:
        self._running[owner] = self._running.get(owner, 0) + 1
        self._served[owner] = next(self._turns)

    def _release(self, owner: str) -> None:
        left = self._running[owner] - 1
        if left:
            self._running[owner] = left
        else:
            del self._running[owner]
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self.busy < self.slots:
            # Fewest running first, then the owner served longest ago, then arrival.
            waiter = min(
                self._waiting,
                key=lambda w: (self._running.get(w.owner, 0), self._served.get(w.owner, -1), w.order),
            )
            self._waiting.remove(waiter)
            self._take(waiter.owner)
            waiter.granted.set_result(None)
