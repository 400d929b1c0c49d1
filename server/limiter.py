"""Rate limits over the store: counted where every instance sees them, decided by :mod:`server.limits`.

Two users of the store's windows (:meth:`server.store.base.Store.hit`), on the service
clock's wall time (``Clock.wall()``, the same on every instance; a manual clock in tests):

* :class:`RateLimiter` — at most ``limit.count`` hits per subject (a client, a client and
  an exhibit) in a window; the hit that goes over raises :class:`~server.limits.Throttled`
  with the seconds until the window ends. Refused hits count too: a client that keeps
  hammering does not get in earlier, and the window still ends when it ends.
* :class:`AuthThrottle` — failed credential checks (stream keys, tokens) per scope (the
  client's address, an input). ``limit`` failures in ``window`` seconds block the scope:
  every attempt, even with the right credential, gets 429 ``auth.too_many_attempts`` for
  ``window`` seconds, doubling with each further block within ``strike_window`` (up to
  ``max_block``). Successes are not counted; attempts refused while blocked are not
  checked, so they cannot fail.

Store keys (under the store's namespace)::

    limit:{name}:{subject}           window   hits of a RateLimiter
    auth:fail:{kind}:{scope}         window   failed checks
    auth:strike:{kind}:{scope}       window   blocks so far (the doubling)
    auth:block:{kind}:{scope}        window   open while the scope is blocked
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from server.clock import Clock
from server.errors import ForumcastError
from server.limits import Limit, Throttled, block_seconds, decide, retry_after
from server.metrics import Metrics
from server.store.base import Store

#: Failed checks one client address may make per kind in a minute before it is blocked.
IP_LIMIT = 10
#: Failed stream keys one input (or closed stage) may see from all clients in a minute.
TARGET_LIMIT = 100


class RateLimiter:
    """``limit`` per subject, counted in ``store`` under ``limit:{name}:…``; refusals raise ``code`` (429)."""

    def __init__(self, store: Store, clock: Clock, *, name: str, limit: Limit, code: str, what: str) -> None:
        self._store = store
        self._clock = clock
        self.name = name
        self.limit = limit
        self._code = code
        self._what = what

    async def hit(self, subject: str) -> None:
        """Count one hit of ``subject``, or raise :class:`Throttled` if it goes over the limit."""
        now = self._clock.wall()
        hits = await self._store.hit(f"limit:{self.name}:{subject}", window=self.limit.window, now=now)
        decision = decide(hits.count, hits.ends, self.limit, now=now)
        if not decision.allowed:
            raise Throttled(self._code, f"too many {self._what}", decision.retry_after)


@dataclass(frozen=True, slots=True)
class Scope:
    """What failures are counted against (``ip:203.0.113.7``, ``input:main-cam``) and how many it may make."""

    key: str
    limit: int


class AuthThrottle:
    """Counts failed credential checks per scope and turns blocked scopes away.

    ``window`` (60 s) is both the span in which ``limit`` failures block a scope and the
    first block's length; ``strike_window`` (a day) is how long earlier blocks are
    remembered for the doubling, ``max_block`` (an hour) its ceiling.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        window: float = 60.0,
        max_block: float = 3600.0,
        strike_window: float = 86400.0,
    ) -> None:
        if not (window > 0 and max_block >= window and strike_window >= max_block):
            raise ValueError("need 0 < window <= max_block <= strike_window")
        self._store = store
        self._clock = clock
        self.window = window
        self.max_block = max_block
        self.strike_window = strike_window

    async def check(self, kind: str, scopes: Sequence[Scope]) -> None:
        """Raise :class:`Throttled` (``auth.too_many_attempts``) if any of ``scopes`` is blocked."""
        now = self._clock.wall()
        for scope in scopes:
            block = await self._store.hits(f"auth:block:{kind}:{scope.key}", now=now)
            if block.count:
                raise Throttled(
                    "auth.too_many_attempts",
                    f"too many failed {kind.replace('_', ' ')} attempts",
                    retry_after(block.ends, now),
                )

    async def failed(self, kind: str, scopes: Sequence[Scope]) -> None:
        """Count one failed check against every scope; block those that reach their limit."""
        now = self._clock.wall()
        for scope in scopes:
            fails = await self._store.hit(f"auth:fail:{kind}:{scope.key}", window=self.window, now=now)
            # Exactly the failure that reaches the limit blocks (== rather than >=), so
            # concurrent failures past it cannot count extra strikes. No failure can be
            # counted in that window afterwards: the block outlasts it (it is >= window).
            if fails.count != scope.limit:
                continue
            strikes = await self._store.hit(
                f"auth:strike:{kind}:{scope.key}", window=self.strike_window, now=now
            )
            length = block_seconds(strikes.count, base=self.window, cap=self.max_block)
            await self._store.hit(f"auth:block:{kind}:{scope.key}", window=length, now=now)


async def checked_key(
    throttle: AuthThrottle, metrics: Metrics, client: str, target: str, check: Callable[[], None]
) -> None:
    """Run ``check`` (it raises on a wrong stream key) for ``target`` (``input:ID``) tried by
    ``client`` (its address), under the throttle: refused with ``auth.too_many_attempts`` while
    either is blocked, a failure counted against both. Every publisher protocol (WebSocket,
    HTTP, RTMP, SRT) and a closed stage's ``?key=`` go through here."""
    scopes = (Scope(f"ip:{client}", IP_LIMIT), Scope(target, TARGET_LIMIT))
    try:
        await throttle.check("stream_key", scopes)
    except Throttled:
        metrics.auth_throttled.labels(kind="stream_key").inc()
        raise
    try:
        check()
    except ForumcastError:
        metrics.auth_failures.labels(kind="stream_key").inc()
        await throttle.failed("stream_key", scopes)
        raise
