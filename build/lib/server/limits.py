"""Rate limits as decisions: given a window's count and the settings, allowed or not, and for how long.

Sans-I/O on purpose (no store, no clock, no asyncio): the counting happens in the store
(:meth:`server.store.base.Store.hit`, fixed windows that open at their first hit and are
shared by every instance), the waiting in the clients. This module owns what the numbers
mean, so the meeting requests, the new visitor ids and the credential checks decide alike:

* :class:`Limit` — at most ``count`` hits per ``window`` seconds; the hit that goes over
  is refused with ``Retry-After`` = the seconds until the window ends (rounded up, at
  least 1).
* :func:`block_seconds` — how long a client that failed a credential check ``limit``
  times is turned away: ``base`` for the first strike, doubling with every further strike
  while the failures go on, up to ``cap``.
* :class:`Throttled` — the 429 error that carries the ``Retry-After`` seconds; the HTTP
  error renderer copies them into the header.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from server.errors import ForumcastError


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` hits in a window of ``window`` seconds."""

    count: int
    window: float

    def __post_init__(self) -> None:
        if self.count < 1 or not self.window > 0:
            raise ValueError(f"a limit needs a count >= 1 and a positive window, got {self}")


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one hit may go ahead; ``retry_after`` whole seconds when it may not (0 when it may)."""

    allowed: bool
    retry_after: int = 0


ALLOWED = Decision(True)


def retry_after(ends: float, now: float) -> int:
    """Whole seconds from ``now`` until ``ends``, rounded up and at least 1 (a ``Retry-After``)."""
    return max(1, math.ceil(ends - now - 1e-9))


def decide(count: int, ends: float, limit: Limit, *, now: float) -> Decision:
    """The decision for a hit that made ``count`` hits in a window ending at ``ends``."""
    if count <= limit.count:
        return ALLOWED
    return Decision(False, retry_after(ends, now))


def block_seconds(strike: int, *, base: float, cap: float) -> float:
    """How long the ``strike``-th block (1, 2, …) lasts: ``base`` doubling per strike, at most ``cap``."""
    if strike < 1:
        raise ValueError(f"strikes count from 1, got {strike}")
    # min() before the power would overflow for absurd strike counts; cap the exponent instead.
    return min(cap, base * 2.0 ** min(strike - 1, 64))


class Throttled(ForumcastError):
    """A 429: too many attempts; ``retry_after`` is in whole seconds (the ``Retry-After`` header)."""

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        super().__init__(code, f"{message}: try again in {retry_after} s")
        self.retry_after = retry_after
