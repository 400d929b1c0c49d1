"""A build lease: one instance of several does a piece of exhibition work, the others wait.

The lease is a Redis string ``"{instance}|{nonce}"`` set with ``SET NX PX``; its holder
renews it every ``renew_every`` seconds while it works (compare-and-``PEXPIRE``) and
deletes it when done (compare-and-``DEL``), so a holder that dies frees the work within
``ttl``. A lease is not a lock: a holder paused past its ``ttl`` may come back to find
another instance doing the same work. What makes that harmless is where the results go:
blobs are content-addressed (writing one twice writes the same bytes) and the record that
publishes a result is written by a script that first checks the lease still holds
:attr:`BuildLease.value` (the fencing check sits next to the data; see
:data:`exhibits.shared.RECORD_HALL`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.cluster.lease import RELEASE, RENEW

log = logging.getLogger("forumcast.exhibits")

#: Seconds a build lease lives unless renewed (a dead holder frees the work this late).
BUILD_LEASE_TTL = 10.0
#: Seconds between renewals while the holder works.
BUILD_LEASE_RENEW = 2.0


class BuildLease:
    """The lease at ``key``; ``owner`` names this instance in its value (for people reading Redis)."""

    def __init__(
        self,
        client: Redis,
        key: str,
        owner: str,
        *,
        ttl: float = BUILD_LEASE_TTL,
        renew_every: float = BUILD_LEASE_RENEW,
    ) -> None:
        if ttl <= 0 or not 0 < renew_every < ttl:
            raise ValueError("ttl must be positive and renew_every between 0 and ttl")
        self.key = key
        self.value = f"{owner}|{secrets.token_hex(6)}"
        self.ttl_ms = round(ttl * 1000)
        self.renew_every = renew_every
        #: Set when a renewal found the lease gone or someone else's: results are not recorded.
        self.lost = False
        self._client = client
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        taken = await self._client.set(self.key, self.value, nx=True, px=self.ttl_ms)
        self.lost = not taken
        return bool(taken)

    async def taken(self) -> bool:
        """Whether anyone (this instance included) holds the lease now."""
        return bool(await self._client.exists(self.key))

    async def release(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._release(keys=[self.key], args=[self.value])

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                kept = await self._renew(keys=[self.key], args=[self.value, self.ttl_ms])
            except (RedisError, OSError) as exc:
                log.warning("build lease %s: renewal failed (%s)", self.key, exc)
                continue  # the next attempt may still be in time; the fenced write decides
            if not kept:
                self.lost = True
                log.warning("build lease %s: lost", self.key)
                return

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[bool]:
        """Try to take the lease; yield whether it is ours, renewing it until the block ends."""
        if not await self.acquire():
            yield False
            return
        keeper = asyncio.get_running_loop().create_task(self._keep(), name=f"lease {self.key}")
        try:
            yield True
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self.release()
