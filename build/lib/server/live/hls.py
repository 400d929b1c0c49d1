"""A stage program as LL-HLS: the packager fed by the program, the shared waits, the figures.

:class:`HlsOutput` listens to a :class:`~server.live.program.Program` (what it sends its
WebSocket viewers: init segments, switches, fragments on the program's timeline) and feeds
a :class:`~server.media.hls.Packager`.

**One wait and one render per state of the playlist.** Every player of a stage asks for the
same next part at about the same moment. Requests with an equal
:class:`~server.media.hls_reload.Reload` (segment, part, skip, carried query) meet: the first
starts one task that waits for the part (woken by :meth:`HlsOutput.add`, bounded on the
service clock) and renders the playlist once; every request, the first too, awaits a future
of its own that the task resolves (:class:`~server.live.rendezvous.Rendezvous`), so a first
requester that goes away cancels nobody else's answer. The meeting is dropped when its task
ends. A preload-hinted part is held the same way: one shared wait per part number. So N
waiting players cost one wake-up and one render, not N. Rendered playlists are kept per
(skip, query) until the playlist changes.

**Who watches.** HLS has no connection to count, and playlists and media carry nothing per
viewer. Our players count themselves with heartbeats (:mod:`server.live.hls_audience`); the
output keeps the last :class:`~server.live.hls_audience.Tally` the hub made of them, and the
client addresses that fetched its media since (see there for what those estimate, and not).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from server.clock import Clock
from server.live.hls_audience import Tally, Window
from server.live.rendezvous import Rendezvous
from server.media.hls import Packager, Part, SegmentStart
from server.media.hls_reload import Reload, ready, wait_bound
from server.media.inband import with_parameter_sets
from server.media.switcher import Emit, Output, Reinit, Switched
from server.media.types import MediaFragment

#: How often a player sends its heartbeat, in target durations.
HEARTBEAT_TARGETS = 2
#: Heartbeats that may be missed in a row (a slow network, a busy tab) before a viewer is gone.
MISSED_BEATS = 3
#: A client address counts while it fetched the stage's media within this many target durations.
CLIENT_TARGETS = 3

T = TypeVar("T")


def _nothing(*_: object) -> None:
    pass


@dataclass(frozen=True, slots=True)
class HlsMeters:
    """Where an output reports (a stage's metric children; nothing by default)."""

    waited: Callable[[float], None] = _nothing  # seconds one blocking reload was held
    rendered: Callable[[], None] = _nothing  # one media playlist rendered
    waiting: Callable[[float], None] = _nothing  # requests held now
    viewers: Callable[[float], None] = _nothing  # our players whose last heartbeat came here
    clients: Callable[[float], None] = _nothing  # distinct addresses that fetched media lately


@dataclass(slots=True)
class _Rendered:
    version: int = -1
    bodies: dict[tuple[bool, str], bytes] = field(default_factory=dict)


class HlsOutput:
    def __init__(self, packager: Packager, clock: Clock, *, meters: HlsMeters | None = None) -> None:
        self.packager = packager
        self._clock = clock
        self._meters = meters or HlsMeters()
        #: Waits for the next part: one future each (one per shared wait), all woken by a new part.
        self._waiters: set[asyncio.Future[None]] = set()
        #: The shared blocking reloads and held parts, by what they wait for.
        self._reloads: Rendezvous[Reload, bytes | None] = Rendezvous("hls-reload")
        self._parts: Rendezvous[int, Part | None] = Rendezvous("hls-part")
        self._waiting = 0
        self._closed = False
        self._rendered = _Rendered()
        #: Client addresses that fetched media since the hub last counted.
        self.fetched: set[str] = set()
        #: The stage's audience as last counted (:meth:`tallied`).
        self.tally = Tally()

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
        part and wake the waits (``restart``: see :meth:`Packager.add`)."""
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
            if self._closed:
                return False
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

    # -- playlists --------------------------------------------------------------------------

    def playlist(self, reload: Reload) -> bytes:
        """The media playlist now, rendered once per state of the window and (skip, query)."""
        packager, rendered = self.packager, self._rendered
        if rendered.version != packager.version:
            rendered.version, rendered.bodies = packager.version, {}
        key = (reload.skip, reload.query)
        body = rendered.bodies.get(key)
        if body is None:
            body = packager.media_playlist(query=reload.query, skip=reload.skip).encode()
            rendered.bodies[key] = body
            self._meters.rendered()
        return body

    async def blocking_playlist(self, reload: Reload) -> bytes | None:
        """The playlist once it holds what ``reload`` waits for, or None after the bound:
        every request with an equal ``reload`` shares one wait and one render."""
        return await self._held(self._reloads.join(reload, lambda: self._wait_and_render(reload)))

    async def _wait_and_render(self, reload: Reload) -> bytes | None:
        packager = self.packager
        if not await self.wait_for(lambda: ready(packager, reload), within=wait_bound(packager)):
            return None
        return self.playlist(reload)

    async def held_part(self, number: int) -> Part | None:
        """Part ``number`` (the preload hint, not made yet) once it exists, or None after the
        bound: one shared wait per part number."""
        return await self._held(self._parts.join(number, lambda: self._wait_for_part(number)))

    async def _wait_for_part(self, number: int) -> Part | None:
        packager = self.packager
        await self.wait_for(lambda: packager.part(number) is not None, within=wait_bound(packager))
        return packager.part(number)

    async def _held(self, answer: asyncio.Future[T]) -> T:
        clock, meters = self._clock, self._meters
        started = clock.monotonic()
        self._waiting += 1
        meters.waiting(self._waiting)
        try:
            return await answer
        finally:
            self._waiting -= 1
            meters.waiting(self._waiting)
            meters.waited(clock.monotonic() - started)

    async def close(self) -> None:
        """Going away: every wait ends now, as if its bound had passed (a 503, or a part gone)."""
        self._closed = True
        for waiter in self._waiters:
            _wake(waiter)
        await self._reloads.wait_closed()
        await self._parts.wait_closed()

    # -- the audience -----------------------------------------------------------------------

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between a player's heartbeats."""
        return HEARTBEAT_TARGETS * self.packager.target_duration

    @property
    def window(self) -> Window:
        """How long a heartbeat, and a media fetch, keep counting."""
        return Window(
            viewers=MISSED_BEATS * self.heartbeat_interval,
            clients=CLIENT_TARGETS * self.packager.target_duration,
        )

    def fetched_by(self, address: str | None) -> None:
        """A client at ``address`` fetched a part or segment (counted at the hub's next tally)."""
        self.fetched.add(address or "?")

    def take_fetched(self) -> set[str]:
        fetched, self.fetched = self.fetched, set()
        return fetched

    def tallied(self, tally: Tally) -> None:
        """The stage's audience as the hub just counted it."""
        self.tally = tally
        self._meters.viewers(tally.here)
        self._meters.clients(tally.clients)


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
