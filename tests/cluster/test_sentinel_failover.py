"""Two real forumcast instances on a Sentinel-managed Redis (a master, a replica and three
real ``redis-sentinel`` processes): a failover of the master freezes the viewers for a
moment, disconnects none, and what the store held is on the new master."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.cluster import Cluster, Recording, assert_timeline
from tests.support.sentinel import SentinelDeployment

STAGE = "main"
#: After the failover, fragments must flow again within this (seconds).
RESUMED_WITHIN = 5.0


def test_a_sentinel_failover_of_the_master(tmp_path: Path, clip: Path) -> None:
    with (
        SentinelDeployment(tmp_path / "sentinel") as deployment,
        Cluster(tmp_path / "cluster", clip, size=2, redis_url=deployment.url) as cluster,
    ):
        a, b = cluster.instances
        status, body = a.post(f"/api/v1/stages/{STAGE}/delay", {"minutes": 4})
        assert status == 200, body
        old_master = deployment.master()
        timing: dict[str, float] = {}

        async def scenario() -> list[Recording]:
            async def failover() -> None:
                await asyncio.sleep(4)
                timing["started"] = time.monotonic()
                await asyncio.to_thread(deployment.failover)
                timing["done"] = time.monotonic()

            viewers = [Recording(f"{i.ws}/ws/watch/{STAGE}") for i in (a, b)]
            recordings = await asyncio.gather(*(v.run(13) for v in viewers), failover())
            return recordings[:2]  # type: ignore[return-value]

        recordings = asyncio.run(scenario())
        assert deployment.master() != old_master
        for recording in recordings:
            assert recording.close_code is None  # frozen at most, never disconnected
            resumed = [t for t, _ in recording.media if t > timing["done"]]
            assert resumed, "nothing after the failover"
            gaps = [
                later - earlier for earlier, later in zip([timing["done"], *resumed], resumed, strict=False)
            ]
            assert max(gaps) < RESUMED_WITHIN, max(gaps)
            assert_timeline(recording.parsed()[1])
        # the delay written before the failover is on the new master, seen by both
        for instance in (a, b):
            status, stage = instance.get(f"/api/v1/stages/{STAGE}", role=None)
            assert status == 200 and stage["delay_minutes"] == 4
        assert cluster.wait_led(STAGE)
