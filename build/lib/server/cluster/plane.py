"""The cluster's Redis connection: the scripts, and the few commands everything else uses.

One :class:`Plane` per instance holds two binary ``redis.asyncio`` clients on the same
Redis (plain, or Sentinel-managed: :func:`server.store.redis.connect` builds both): one for
commands and writes, one for the edge's blocking ``XREAD`` (so a read waiting for media
never holds up a lease renewal). Every method either works or raises ``RedisError``/
``OSError``; the loops calling them retry on their own clock, so an instance rides out a
Redis restart or a Sentinel failover with its viewers connected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from server.cluster.entries import InputEntry, ProgramEntry, ProgramKind
from server.cluster.lease import ACQUIRE, RELEASE, RENEW, WRITE, lease_value
from server.cluster.names import ClusterNames
from server.store.redis import connect

#: Seconds a blocking read waits for new entries before it looks at its streams again.
READ_BLOCK = 0.2
#: Entries of an input stream kept (about two GOPs of 200 ms fragments, plus margin).
INPUT_MAXLEN = 40

#: One stream read: (stream name, [(entry id, fields)]).
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


class Plane:
    def __init__(self, url: str, names: ClusterNames, *, instance: str) -> None:
        self.names = names
        self.instance = instance
        self.redis: Redis = connect(url, decode_responses=False, retries=2, socket_timeout=2.0)
        self.reader: Redis = connect(url, decode_responses=False, retries=0, socket_timeout=READ_BLOCK + 2.0)
        self._acquire = self.redis.register_script(ACQUIRE)
        self._renew = self.redis.register_script(RENEW)
        self._release = self.redis.register_script(RELEASE)
        self._write = self.redis.register_script(WRITE)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.reader.aclose()

    # -- leases -----------------------------------------------------------------------------

    async def acquire(self, lease_key: str, epoch_key: str, ttl: float) -> int:
        """The new epoch if we got the lease, else 0."""
        return int(await self._acquire(keys=[lease_key, epoch_key], args=[self.instance, int(ttl * 1000)]))

    async def renew(self, lease_key: str, epoch: int, ttl: float) -> bool:
        value = lease_value(self.instance, epoch)
        return bool(await self._renew(keys=[lease_key], args=[value, int(ttl * 1000)]))

    async def release(self, lease_key: str, epoch: int) -> None:
        await self._release(keys=[lease_key], args=[lease_value(self.instance, epoch)])

    async def leases(self, keys: Sequence[str]) -> list[str | None]:
        values: list[Any] = await self.redis.mget(keys) if keys else []
        return [None if v is None else bytes(v).decode() for v in values]

    # -- inputs -----------------------------------------------------------------------------

    async def publish_input(self, input_id: str, entries: Sequence[InputEntry]) -> None:
        """Append what a publisher connected here sent (in order, one round trip)."""
        stream = self.names.input_stream(input_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                if entry.data and entry.kind.value == "init":
                    pipe.set(f"{stream}:init", entry.publisher.encode() + b"\n" + entry.data)
                pipe.xadd(stream, entry.fields(), maxlen=INPUT_MAXLEN, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()

    async def input_history(self, input_id: str) -> tuple[tuple[str, bytes] | None, StreamEntries]:
        """The input's last init (publisher, bytes) and the entries its stream still holds."""
        stream = self.names.input_stream(input_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(f"{stream}:init")
            pipe.xrange(stream)
            init, entries = await pipe.execute()
        last_init = None
        if init:
            publisher, _, data = bytes(init).partition(b"\n")
            last_init = (publisher.decode(), data)
        return last_init, list(entries)

    # -- programs ---------------------------------------------------------------------------

    async def write_program(
        self,
        stage: str,
        epoch: int,
        entries: Sequence[ProgramEntry],
        *,
        maxlen: int,
        state: Mapping[str, Any] | None = None,
        control: Mapping[str, Any] | None = None,
    ) -> bool:
        """Append ``entries`` to the stage's program if our lease still holds (one script:
        fenced). With ``state``, also set and announce what the program shows. False: the
        lease is not ours any more, and nothing was written."""
        names = self.names
        args: list[bytes | str | int] = [lease_value(self.instance, epoch), maxlen]
        for entry in entries:
            fields = entry.fields()
            if entry.kind is ProgramKind.INIT:
                args += ["k", 3, entry.data]
            args += ["x", 2 * len(fields)]
            for name, value in fields.items():
                args += [name, value]
        if state is not None:
            text = json.dumps({"type": "state", "stage": stage, "epoch": epoch, "state": state})
            args += ["k", 4, json.dumps(state), "p", 0, names.events, text]
        if control is not None:
            args += ["k", 5, json.dumps(control)]
        keys = [
            names.lease(stage),
            names.program_stream(stage),
            names.program_init(stage),
            names.program_state(stage),
            names.program_control(stage),
        ]
        return bool(await self._write(keys=keys, args=args))

    async def program_history(self, stage: str) -> tuple[bytes | None, StreamEntries]:
        """The program's init segment and every entry its stream still holds."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.names.program_init(stage))
            pipe.xrange(self.names.program_stream(stage))
            init, entries = await pipe.execute()
        return init, list(entries)

    async def read(self, streams: Mapping[str, bytes]) -> list[tuple[str, StreamEntries]]:
        """New entries of ``streams`` (name -> last id seen), waiting up to :data:`READ_BLOCK`."""
        if not streams:
            return []
        reply: Any = await self.reader.xread(dict(streams), count=200, block=int(READ_BLOCK * 1000))  # type: ignore[arg-type]
        return [(bytes(name).decode(), list(entries)) for name, entries in reply or []]

    # -- small values -----------------------------------------------------------------------

    async def get_json(self, key: str) -> Any | None:
        raw = await self.redis.get(key)
        return None if raw is None else json.loads(raw)

    async def get_many_json(self, keys: Iterable[str]) -> list[Any | None]:
        keys = list(keys)
        raw = await self.redis.mget(keys) if keys else []
        return [None if r is None else json.loads(r) for r in raw]

    async def set_once(self, key: str, value: str) -> str:
        """``value`` stored at ``key`` unless something is already there; what is there now."""
        await self.redis.set(key, value, nx=True)
        raw: Any = await self.redis.get(key)
        return value if raw is None else bytes(raw).decode()

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        await self.redis.publish(channel, json.dumps(message))
