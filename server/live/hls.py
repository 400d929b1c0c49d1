"""A stage program as LL-HLS: the packager fed by the program, the waits, the HLS viewers.

:class:`HlsOutput` listens to a :class:`~server.live.program.Program` (what it sends its
WebSocket viewers: init segments, switches, fragments on the program's timeline) and feeds
a :class:`~server.media.hls.Packager`. Requests that must wait (a blocking playlist reload
for a part not yet made, a preload-hinted part) await :meth:`HlsOutput.wait_for`, which
wakes at every new part and gives up after a bound.

HLS has no connection to count, so each playback carries a session id (``sid``, put in
its playlist's URLs by the multivariant playlist); a session is active while it fetched
anything within the last two target durations. Behind a CDN only the requests the CDN
passes on are seen: cached segments and parts are not, but every client keeps reloading
its playlist (blocking reloads carry the ``sid`` and are cached per URL only briefly), so the
count holds as long as playlist requests reach the origin.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from server.clock import Clock
from server.media.hls import Packager
from server.media.inband import with_parameter_sets
from server.media.switcher import Emit, Output, Reinit, Switched


class HlsOutput:
    def __init__(
        self, packager: Packager, clock: Clock, *, on_viewers: Callable[[int], None] = lambda _: None
    ) -> None:
        self.packager = packager
        self._clock = clock
        #: Requests waiting for the next part: one future each, all woken by a new part.
        self._waiters: set[asyncio.Future[None]] = set()
        self._sessions: dict[str, float] = {}
        self._on_viewers = on_viewers

    def __call__(self, output: Output) -> None:
        """One item the program sent its viewers."""
        if isinstance(output, Reinit):
            self.packager.set_init(output.init)
        elif isinstance(output, Switched):
            self.packager.discontinuity()
        elif isinstance(output, Emit):
            fragment = output.fragment
            init = self.packager.init
            if fragment.keyframe and init is not None:
                fragment = with_parameter_sets(fragment, init)  # for players that skip a new map
            self.packager.add(fragment, wall_time=self._clock.wall())
            waiters, self._waiters = self._waiters, set()
            for waiter in waiters:
                _wake(waiter)

    async def wait_for(self, ready: Callable[[], bool], *, within: float) -> bool:
        """Wait until ``ready()`` (checked at every new part) or ``within`` seconds of the
        service clock; whether it is."""
        clock = self._clock
        deadline = clock.monotonic() + within
        loop = asyncio.get_running_loop()
        while not ready():
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return False
            waiter = loop.create_future()
            self._waiters.add(waiter)
            timer = clock.call_later(remaining, functools.partial(_wake, waiter))
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiters.discard(waiter)
        return True

    def seen(self, sid: str | None, now: float | None = None) -> None:
        if sid:
            self._sessions[sid] = self._clock.monotonic() if now is None else now

    def viewers(self, now: float | None = None) -> int:
        """Sessions that fetched anything within two target durations; forgets older ones."""
        now = self._clock.monotonic() if now is None else now
        horizon = now - 2 * self.packager.target_duration
        for sid in [s for s, at in self._sessions.items() if at < horizon]:
            del self._sessions[sid]
        count = len(self._sessions)
        self._on_viewers(count)
        return count


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def epoch(wall: float) -> str:
    """A run's tag in media URLs: its start time (``wall``, Unix seconds) in milliseconds, base 36."""
    value, digits = int(wall * 1000), ""
    while value:
        value, rest = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
    return digits
