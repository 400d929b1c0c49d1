"""Work that one instance of the cluster does for all (the demo's publishers, say), under a lease.

:func:`while_leading` runs ``work`` only while this instance holds the lease ``name``
(the same scripts and timings as a stage's lease). Another instance takes over within a
lease when the holder dies; the holder stops the work as soon as it cannot renew in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from redis.exceptions import RedisError

from server.clock import Clock
from server.cluster.lease import LEASE_TTL, RENEW_INTERVAL, SAFETY
from server.cluster.plane import Plane

log = logging.getLogger("forumcast.cluster")


async def while_leading(
    plane: Plane,
    clock: Clock,
    name: str,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    ttl: float = LEASE_TTL,
    renew_interval: float = RENEW_INTERVAL,
) -> None:
    """Forever (a supervised task): wait for the lease ``name``, run ``work`` while it holds."""
    lease, counter = plane.names.lease(f"~{name}"), plane.names.epoch(f"~{name}")
    while True:
        try:
            sent = clock.monotonic()
            epoch = await plane.acquire(lease, counter, ttl)
        except (RedisError, OSError):
            epoch = 0
        if not epoch:
            await clock.sleep(renew_interval)
            continue
        log.info("%s: this instance does it (epoch %d)", name, epoch)
        task = asyncio.get_running_loop().create_task(work(), name=name)
        renewed = sent
        try:
            while not task.done():
                await clock.sleep(renew_interval)
                now = clock.monotonic()
                try:
                    if not await plane.renew(lease, epoch, ttl):
                        break
                    renewed = now
                except (RedisError, OSError):
                    if now - renewed > ttl * SAFETY:
                        break
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # a failure of the work itself is raised here: the supervisor sees it
        log.warning("%s: lease lost, stopped", name)
