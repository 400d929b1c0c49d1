"""The store behind Sentinel: ``redis+sentinel://`` URLs, and a real failover survived.

Each test runs its own master, replica and three sentinels (tests/support/sentinel.py);
without Debian's ``redis-sentinel`` they fail, they never skip.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.cluster.names import ClusterNames
from server.cluster.plane import Plane
from server.store import StoreUnavailable, key_prefix
from server.store.redis import RedisStore, connect
from server.store.sentinel import SentinelURL, parse_sentinel_url
from tests.support.sentinel import SentinelDeployment, command

pytestmark = pytest.mark.asyncio

#: After a failover, writes must succeed again within this (seconds).
RECOVERY = 5.0


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[SentinelDeployment]:
    with SentinelDeployment(tmp_path) as running:
        yield running


async def test_url_forms() -> None:
    assert parse_sentinel_url("redis+sentinel://a:1,b/main") == SentinelURL((("a", 1), ("b", 26379)), "main")
    assert parse_sentinel_url("redis+sentinel://:p@ss@[::1]:5/svc/3") == SentinelURL(
        (("::1", 5),), "svc", 3, None, "p@ss"
    )
    for bad in ("redis+sentinel://h:1", "redis+sentinel://h:1/svc/x", "redis+sentinel://h:x/svc"):
        with pytest.raises(ValueError):
            parse_sentinel_url(bad)


async def test_a_bad_sentinel_url_is_refused_without_its_password() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        connect("redis+sentinel://u:secretpw@h:1/svc/notanumber")
    assert "secretpw" not in str(caught.value)
    assert "notanumber" in str(caught.value)


async def test_the_store_keeps_working_across_a_failover(deployment: SentinelDeployment) -> None:
    store = RedisStore.from_url(deployment.url, namespace="sentinel")
    try:
        await store.set("before", {"n": 1})
        await store.append("log", "first")
        # The replica must hold what was written before it is promoted.
        assert "first" in await asyncio.to_thread(_replica_has, deployment)
        old_master = deployment.master()
        await asyncio.to_thread(deployment.failover)
        assert deployment.master() != old_master

        started = time.monotonic()
        while True:
            try:
                await store.set("after", {"n": 2})
                break
            except StoreUnavailable:
                assert time.monotonic() - started < RECOVERY, "no write succeeded within 5 s of the failover"
                await asyncio.sleep(0.1)
        assert time.monotonic() - started < RECOVERY
        assert await store.get("before") == {"n": 1}
        assert await store.get("after") == {"n": 2}
        assert await store.append("log", "second") == 2
        assert await store.items("log") == ["first", "second"]
    finally:
        await store.close()


async def test_the_cluster_plane_takes_the_same_url(deployment: SentinelDeployment) -> None:
    # The media plane's binary clients come from the same factory: a lease through the sentinels.
    names = ClusterNames.of("sentinel")
    plane = Plane(deployment.url, names, instance="a")
    try:
        assert await plane.acquire(names.lease("main"), names.epoch("main"), ttl=5.0) == 1
        assert await plane.leases([names.lease("main")]) == ["a|1"]
        assert await plane.reader.ping()
    finally:
        await plane.close()


def _replica_has(deployment: SentinelDeployment) -> str:
    deadline = time.monotonic() + 5
    reply = ""
    while time.monotonic() < deadline:
        reply = command(deployment.replica_port, "LRANGE", key_prefix("sentinel") + "log", "0", "-1")
        if "first" in reply:
            break
        time.sleep(0.05)
    return reply
