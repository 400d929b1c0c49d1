"""The state store interface: what must survive a restart or be shared between instances.

Two implementations stand side by side behind :class:`Store`: ``memory.py`` (the embedded
default, one process) and ``redis.py`` (``--redis-url``, shared by every instance). One
contract test suite runs against both. Values are JSON-compatible (dicts, lists, strings,
numbers, bools, None); keys are short strings that the store prefixes with its namespace.

What lives here: stage delays (``delays:{stage}``, an append-only list), producer
overrides, counters, sets of strings (unique visitors of an exhibit, meeting requests
already decided), rate-limit windows (hits per client, shared so that limits hold across
instances). Not media, not viewer sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from server.errors import ForumcastError


class StoreUnavailable(ForumcastError):
    """The backing store cannot be reached (after the configured retries)."""

    def __init__(self, message: str) -> None:
        super().__init__("store.unavailable", message)


@dataclass(frozen=True, slots=True)
class Hits:
    """A rate-limit window: the hits counted in it, and when it ends (on the callers' clock)."""

    count: int
    ends: float


class Store(Protocol):
    """Async key/value + list + counter + set store with JSON values."""

    #: Short name for logs and /readyz ("memory" or "redis").
    kind: str

    async def ping(self) -> None:
        """Return when the store answers; raise :class:`StoreUnavailable` otherwise."""

    async def get(self, key: str) -> Any | None:
        """The value stored at ``key``, or None."""

    async def set(self, key: str, value: Any) -> None:
        """Store ``value`` at ``key``, replacing what was there."""

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a value, a list, a counter group or a set); no error if absent."""

    async def append(self, key: str, value: Any) -> int:
        """Append ``value`` to the list at ``key``; return the list's new length."""

    async def items(self, key: str) -> list[Any]:
        """The whole list at ``key`` in append order ([] if absent)."""

    async def incr(self, key: str, field: str, by: int = 1) -> int:
        """Add ``by`` to counter ``field`` of the group ``key``; return its new value."""

    async def counters(self, key: str) -> dict[str, int]:
        """Every counter of the group ``key`` ({} if absent)."""

    async def add(self, key: str, member: str) -> bool:
        """Put the string ``member`` into the set at ``key``; True if it was not there yet.

        Atomic: of any number of concurrent calls with the same member, exactly one (in any
        instance sharing the store) gets True, so callers may use it to claim something.
        """

    async def cardinality(self, key: str) -> int:
        """How many members the set at ``key`` has (0 if absent)."""

    async def hit(self, key: str, *, window: float, now: float) -> Hits:
        """Count one hit in the window at ``key`` and return the window with it.

        A window opens at the first hit after the previous one ended (``now`` is at or past
        its end) and lasts ``window`` seconds. ``now`` is the caller's clock in seconds
        since the epoch (the service clock's ``wall()``, the same for every instance), so
        windows follow a manual clock too. Atomic: of N concurrent hits, each gets its own
        count. An ended window is forgotten; Redis expires the key after ``window`` real
        seconds (plus one), so a clock running slower than real time may lose counts early.
        """

    async def hits(self, key: str, *, now: float) -> Hits:
        """The window at ``key`` without counting; ``Hits(0, now)`` if none is open at ``now``."""

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
