"""LL-HLS viewers counted exactly across instances (two real forumcast processes on one real
redis-server): players whose heartbeats land round robin on both instances, as behind a
front, count once each in ``GET /api/v1/cluster``, and none once they stop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.cluster import Cluster, Instance

PLAYERS = 24
STAGE = "main"
#: With 1 s target durations: a heartbeat every 2 s, gone after 3 missed ones (6 s).
INTERVAL, WINDOW = 2.0, 6.0


def stage_viewers(instance: Instance) -> tuple[dict[str, int], int]:
    """(the stage's viewers on every instance, this instance's own HLS share) as it says."""
    status, body = instance.get("/api/v1/cluster")
    assert status == 200, body
    viewers = next(s["viewers"] for s in body["stages"] if s["id"] == STAGE)
    me = next(i for i in body["instances"] if i["id"] == instance.name)
    return viewers, me["viewers_by_stage"][STAGE]["hls"]


async def players_beating(instances: list[Instance], rounds: int) -> None:
    """``PLAYERS`` players; the k-th heartbeat of player n goes to instance (n + k) mod 2."""
    async with aiohttp.ClientSession() as session:  # a public stage: no token

        async def post(instance: Instance, name: str, body: dict[str, Any] | None = None) -> Any:
            async with session.post(f"{instance.url}/live/{STAGE}/{name}", json=body) as response:
                assert response.status in (201, 204), await response.text()
                return await response.json() if response.status == 201 else None

        ids = [(await post(instances[n % len(instances)], "viewer-id"))["id"] for n in range(PLAYERS)]
        for k in range(rounds):
            await asyncio.gather(
                *(
                    post(instances[(n + k) % len(instances)], "heartbeat", {"id": viewer})
                    for n, viewer in enumerate(ids)
                )
            )
            if k < rounds - 1:
                await asyncio.sleep(INTERVAL)


@pytest.mark.out_of_process_servers
def test_players_beating_on_both_instances_count_once(tmp_path: Path, clip: Path) -> None:
    env = {"FORUMCAST_HLS_TARGET_DURATION": "1"}
    with Cluster(tmp_path / "cluster", clip, size=2, env=env) as cluster:
        instances = cluster.instances
        started = time.monotonic()
        asyncio.run(players_beating(instances, rounds=3))
        stopped = time.monotonic()
        time.sleep(1.5)  # the instances count every second
        for instance in instances:
            viewers, _ = stage_viewers(instance)
            assert viewers["hls"] == PLAYERS, (instance.name, viewers)
        # Each player is one instance's (where its last beat went): the shares add up.
        shares = [stage_viewers(i)[1] for i in instances]
        assert sum(shares) == PLAYERS and all(shares), shares
        print(f"\n{PLAYERS} players over {stopped - started:.1f} s: hls {PLAYERS}, shares {shares}")
        # Once they stop: 0 within the missed-beats window (plus a count, plus the answer).
        while any(stage_viewers(i)[0]["hls"] for i in instances):
            assert time.monotonic() - stopped < WINDOW + 2.5, [stage_viewers(i) for i in instances]
            time.sleep(0.2)
        gone = time.monotonic() - stopped
        assert gone > WINDOW - 0.5, gone  # not before the window
        assert [stage_viewers(i)[1] for i in instances] == [0, 0]
        print(f"0 hls viewers {gone:.1f} s after the last heartbeat")
