"""The LL-HLS audience of a cluster, in Redis: one count for every instance behind the front.

Behind a front, one player's heartbeats land on whichever instance the front picks, so the
instances' own counts, summed, would count a player once per instance it reached. Here each
stage keeps sorted sets (names in :mod:`server.cluster.names`), scored by wall-clock
milliseconds:

- ``hls:{stage}:viewers``: every viewer id and its last heartbeat. The stage's HLS viewers
  are its members within the window (``ZREMRANGEBYSCORE`` then ``ZCARD``): one member per
  player however many instances heard it.
- ``hls:{stage}:at:{instance}``: the ids whose *latest* heartbeat came to that instance. A
  heartbeat adds its id here and removes it from the other live instances' sets in the same
  ``MULTI`` (one round trip; two heartbeats of one player racing on two instances leave it
  in exactly one set). These partition the viewers among the instances, so each instance's
  ``forumcast_viewers{protocol="hls"}`` can be summed over instances as before.
- ``hls:{stage}:clients``: client addresses and their last media fetch. Each instance adds
  the addresses it saw since its last count in one ``ZADD`` per stage, at its count
  (every ``viewers_interval``): one round trip per count for every stage, never one per
  media request.

The contract (:class:`server.live.hls_audience.Audience`) is tested against this flavour and
the memory one by the same suite.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping

from redis.exceptions import RedisError

from server.cluster.plane import Plane
from server.errors import ForumcastError
from server.live.hls_audience import Tally, Window

log = logging.getLogger("forumcast.cluster")

#: Milliseconds a stage's sets outlive their last write (far past any window).
KEEP_MS = 600_000


class RedisAudience:
    def __init__(self, plane: Plane, *, instances: Callable[[], Iterable[str]]) -> None:
        """``instances``: the live instances' ids (the registry's), this one's among them."""
        self._plane = plane
        self._instances = instances

    async def heard(self, stage: str, viewer: str, now: float) -> None:
        names, me = self._plane.names, self._plane.instance
        score = _ms(now)
        everyone, here = names.hls_viewers(stage), names.hls_viewers_at(stage, me)
        try:
            async with self._plane.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(everyone, {viewer: score})
                pipe.zadd(here, {viewer: score})
                for other in self._instances():
                    if other != me:
                        pipe.zrem(names.hls_viewers_at(stage, other), viewer)
                pipe.pexpire(everyone, KEEP_MS)
                pipe.pexpire(here, KEEP_MS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ForumcastError("store.unavailable", "the viewer count is out of reach; try again") from exc

    async def count(
        self, windows: Mapping[str, Window], fetched: Mapping[str, Collection[str]], now: float
    ) -> dict[str, Tally]:
        names, me = self._plane.names, self._plane.instance
        # Per stage: where its three ZCARD answers are in the pipeline's results.
        places: dict[str, tuple[int, int, int]] = {}
        commands = 0
        try:
            async with self._plane.redis.pipeline(transaction=False) as pipe:
                for stage, window in windows.items():
                    viewers_horizon = f"({_ms(now - window.viewers)}"  # older than the window
                    clients_horizon = f"({_ms(now - window.clients)}"
                    clients = names.hls_clients(stage)
                    addresses = fetched.get(stage)
                    if addresses:
                        pipe.zadd(clients, dict.fromkeys(addresses, _ms(now)))
                        pipe.pexpire(clients, KEEP_MS)
                        commands += 2
                    counted = []
                    for key, horizon in (
                        (names.hls_viewers(stage), viewers_horizon),
                        (names.hls_viewers_at(stage, me), viewers_horizon),
                        (clients, clients_horizon),
                    ):
                        pipe.zremrangebyscore(key, "-inf", horizon)
                        pipe.zcard(key)
                        counted.append(commands + 1)
                        commands += 2
                    places[stage] = (counted[0], counted[1], counted[2])
                results = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("cluster: could not count the LL-HLS audience (%s)", exc)
            return {}  # the outputs keep their last tallies
        return {
            stage: Tally(viewers=int(results[v]), here=int(results[h]), clients=int(results[c]))
            for stage, (v, h, c) in places.items()
        }


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
