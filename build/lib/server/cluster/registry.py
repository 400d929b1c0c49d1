"""Which instances are alive, and what each holds: a heartbeat per instance in Redis.

Every ``interval`` (1 s) an instance writes its own JSON under ``instance:{id}`` with a time
to live of ``ttl`` (3 s) and reads everyone else's: its address and start, and per stage its
WebSocket and LL-HLS viewers, the inputs whose publishers it holds, the inputs producers
preview on it. An instance that stops beating (killed, cut off) drops out of every sum
within one ``ttl``. Sums are exact: this instance's own figures now, plus each other live
instance's last beat.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from server.clock import Clock
from server.cluster.plane import Plane

log = logging.getLogger("forumcast.cluster")

#: Seconds between heartbeats.
HEARTBEAT_INTERVAL = 1.0
#: Seconds an instance counts as alive after its last heartbeat.
HEARTBEAT_TTL = 3.0


class Registry:
    def __init__(
        self,
        plane: Plane,
        clock: Clock,
        *,
        describe: Callable[[], dict[str, Any]],
        interval: float = HEARTBEAT_INTERVAL,
        ttl: float = HEARTBEAT_TTL,
    ) -> None:
        self._plane = plane
        self._clock = clock
        self._describe = describe
        self.interval = interval
        self.ttl = ttl
        #: The other live instances' last heartbeats, by id.
        self.others: dict[str, dict[str, Any]] = {}
        self.reachable = False

    @property
    def instance(self) -> str:
        return self._plane.instance

    def live_ids(self) -> list[str]:
        return [self.instance, *self.others]

    def me(self) -> dict[str, Any]:
        return {"id": self.instance, **self._describe()}

    def instances(self) -> list[dict[str, Any]]:
        """Every live instance's description, this one first (fresh), the others as last heard."""
        return [self.me(), *(self.others[i] for i in sorted(self.others))]

    def total(self, figure: str, key: str, sub: str | None = None) -> int:
        """The sum over live instances of ``description[figure][key]`` (or ``[key][sub]``)."""
        count = 0
        for description in self.instances():
            value: Any = description.get(figure, {}).get(key, 0)
            if sub is not None:
                value = value.get(sub, 0) if isinstance(value, dict) else 0
            count += int(value) if isinstance(value, int) else 0
        return count

    def holder(self, input_id: str) -> str | None:
        """The live instance another than this one whose publisher feeds ``input_id``, if any."""
        for other in sorted(self.others):
            if input_id in self.others[other].get("publishers", []):
                return other
        return None

    async def beat(self) -> None:
        names, redis = self._plane.names, self._plane.redis
        me = self.me()
        async with redis.pipeline(transaction=False) as pipe:
            pipe.set(names.instance(self.instance), json.dumps(me), px=int(self.ttl * 1000))
            pipe.sadd(names.instances, self.instance)
            pipe.smembers(names.instances)
            _, _, members = await pipe.execute()
        ids = sorted(m.decode() for m in members if m.decode() != self.instance)
        values: list[Any] = await redis.mget([names.instance(i) for i in ids]) if ids else []
        others: dict[str, dict[str, Any]] = {}
        gone = []
        for instance, raw in zip(ids, values, strict=True):
            if raw is None:
                gone.append(instance)
                continue
            try:
                others[instance] = json.loads(raw)
            except ValueError:
                continue
        if gone:
            await redis.srem(names.instances, *gone)
        self.others = others

    async def run(self) -> None:
        """Beat forever (a supervised task); while Redis is away, others are forgotten after ``ttl``."""
        last_ok = self._clock.monotonic()
        while True:
            try:
                await self.beat()
                last_ok = self._clock.monotonic()
                if not self.reachable:
                    log.info("cluster: %d other live instance(s)", len(self.others))
                self.reachable = True
            except (RedisError, OSError) as exc:
                if self.reachable:
                    log.warning("cluster: heartbeat failed (%s)", exc)
                self.reachable = False
                if self._clock.monotonic() - last_ok > self.ttl:
                    self.others = {}
            await self._clock.sleep(self.interval)

    async def leave(self) -> None:
        names = self._plane.names
        try:
            await self._plane.redis.delete(names.instance(self.instance))
            await self._plane.redis.srem(names.instances, self.instance)
        except (RedisError, OSError):
            pass
