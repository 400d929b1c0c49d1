"""A stage program as LL-HLS: the packager fed by the program, the waits, the HLS viewers.

:class:`HlsOutput` listens to a :class:`~server.live.program.Program` (what it sends its
WebSocket viewers: init segments, switches, fragments on the program's timeline) and feeds
a :class:`~server.media.hls.Packager`. Requests that must wait (a blocking playlist reload
for a part not yet made, a preload-hinted part) await :meth:`HlsOutput.wait_for`, which
wakes at every new part and gives up after a bound.

HLS has no connection to count, and playlists and media carry nothing per viewer (every
player gets the same bytes at the same URLs, which a CDN can cache). So our players count
themselves: each gets a viewer id signed by the server (:class:`server.auth.SignedIds`,
``POST /live/{stage}/viewer-id``) and sends it every :attr:`HlsOutput.heartbeat_interval`
(two target durations) to ``POST /live/{stage}/heartbeat``, which calls
:meth:`HlsOutput.heard`; a viewer counts until :data:`MISSED_BEATS` heartbeats in a row
did not come. Players that send none (ffmpeg, VLC, any foreign player) are not counted.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from server.clock import Clock
from server.media.hls import Packager, Part, SegmentStart
from server.media.inband import with_parameter_sets
from server.media.switcher import Emit, Output, Reinit, Switched
from server.media.types import MediaFragment

#: How often a player sends its heartbeat, in target durations.
HEARTBEAT_TARGETS = 2
#: Heartbeats that may be missed in a row (a slow network, a busy tab) before a viewer is gone.
MISSED_BEATS = 3


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
            self.add(output.fragment)

    def add(
        self, fragment: MediaFragment, *, wall_time: float | None = None, restart: SegmentStart | None = None
    ) -> Part:
        """One program fragment (made at ``wall_time``, by default now): package it as a
        part and wake the requests waiting for one (``restart``: see :meth:`Packager.add`)."""
        init = self.packager.init
        if fragment.keyframe and init is not None:
            fragment = with_parameter_sets(fragment, init)  # for players that skip a new map
        wall = self._clock.wall() if wall_time is None else wall_time
        part = self.packager.add(fragment, wall_time=wall, restart=restart)
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            _wake(waiter)
        return part

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

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between a player's heartbeats."""
        return HEARTBEAT_TARGETS * self.packager.target_duration

    def heard(self, viewer: str, now: float | None = None) -> None:
        """A heartbeat of ``viewer`` (an id the caller checked was signed by us)."""
        self._sessions[viewer] = self._clock.monotonic() if now is None else now

    def viewers(self, now: float | None = None) -> int:
        """Viewers heard within :data:`MISSED_BEATS` heartbeat intervals; forgets older ones."""
        now = self._clock.monotonic() if now is None else now
        horizon = now - MISSED_BEATS * self.heartbeat_interval
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
