"""Who watches the stages over LL-HLS: our players' heartbeats, and the addresses that fetch media.

HLS has no connection to count, and playlists and media carry nothing per viewer (every
player gets the same bytes at the same URLs, which a front or a CDN can cache). Two figures
stand in for a count of connections:

- **HLS viewers**, exact for our players. Each gets a viewer id signed by the server
  (``POST /live/{stage}/viewer-id``) and posts it every two target durations
  (``POST /live/{stage}/heartbeat``); a viewer counts until
  :data:`~server.live.hls.MISSED_BEATS` heartbeats in a row did not come. Players that send
  none (ffmpeg, VLC, a bare ``<video src>``) are not counted: a lower bound.
- **HLS clients**, an estimate for any player: the distinct client addresses that fetched
  the stage's parts or segments within the last three target durations. Its limits: it sees
  the client's address as the request has it (the TCP peer; ``X-Forwarded-For`` only from a
  proxy listed in the ``trusted_proxies`` setting, since anyone can write that header), so
  behind a front or a CDN it sees only the front, and with a trusted caching front only the
  clients whose requests missed the cache (a few per part, not every player); clients
  behind one NAT (a venue's Wi-Fi) count as one; a player that only reads playlists counts
  nothing. It is for foreign players reaching the origin without a front. Addresses are
  noted per request and timed when the hub counts (every second).

An :class:`Audience` keeps both, and has two flavours with one contract
(``tests/live/test_hls_audience.py`` runs against both): :class:`MemoryAudience` here, for a
single instance, and :class:`server.cluster.hls_audience.RedisAudience` when instances share
the event: there a player's heartbeats may land on any instance behind the front, so the
count lives in Redis, where each id is one member however many instances heard it.

Times are wall-clock seconds of the service clock (comparable across instances). The
per-instance figure :attr:`Tally.here` (ids whose latest heartbeat came to this instance)
partitions the viewers among instances, so summing the instances' ``forumcast_viewers``
gauges stays exact; :attr:`Tally.viewers` is the whole event's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Window:
    """Seconds a heartbeat (``viewers``) and a media fetch (``clients``) keep counting."""

    viewers: float
    clients: float


@dataclass(frozen=True, slots=True)
class Tally:
    #: Our players heard within the window, on every instance.
    viewers: int = 0
    #: Those whose latest heartbeat came to this instance (all of them, alone).
    here: int = 0
    #: Distinct client addresses that fetched media within the window (every instance's).
    clients: int = 0


class Audience(Protocol):
    async def heard(self, stage: str, viewer: str, now: float) -> None:
        """A heartbeat of ``viewer`` (an id the caller checked was signed by us) at ``now``."""

    async def count(
        self, windows: Mapping[str, Window], fetched: Mapping[str, Collection[str]], now: float
    ) -> dict[str, Tally]:
        """Record the addresses that ``fetched`` each stage's media by ``now``, forget what
        fell out of its window, and count each stage of ``windows``."""


class _Recent:
    """Members and when each was last seen."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def touch(self, members: Collection[str], now: float) -> None:
        for member in members:
            self.seen[member] = max(now, self.seen.get(member, now))

    def count(self, horizon: float) -> int:
        """Members seen at ``horizon`` or later (the older ones are forgotten)."""
        for member in [m for m, at in self.seen.items() if at < horizon]:
            del self.seen[member]
        return len(self.seen)


class MemoryAudience:
    """One instance's audience, in its memory."""

    def __init__(self) -> None:
        self._viewers: dict[str, _Recent] = {}
        self._clients: dict[str, _Recent] = {}

    async def heard(self, stage: str, viewer: str, now: float) -> None:
        self._viewers.setdefault(stage, _Recent()).touch((viewer,), now)

    async def count(
        self, windows: Mapping[str, Window], fetched: Mapping[str, Collection[str]], now: float
    ) -> dict[str, Tally]:
        tallies = {}
        for stage, window in windows.items():
            clients = self._clients.setdefault(stage, _Recent())
            clients.touch(fetched.get(stage, ()), now)
            viewers = self._viewers.setdefault(stage, _Recent()).count(now - window.viewers)
            tallies[stage] = Tally(viewers=viewers, here=viewers, clients=clients.count(now - window.clients))
        return tallies
