"""The cluster's gauges for the platform dashboard, from real instances on a real Redis:
the leader's epoch per stage (every instance agrees, a new leader steps it up) and the
edge's stream lag (an instance frozen by SIGSTOP reads entries that waited in Redis)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.cluster import Cluster, Instance
from tests.support.metrics_text import value


def gauge(instance: Instance, name: str, **labels: str) -> float | None:
    status, body = instance.get("/metrics")
    assert status == 200
    return value(body.decode(), name, **labels)


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("not within the timeout")


def test_leader_epoch_and_stream_lag(tmp_path: Path, clip: Path) -> None:
    with Cluster(tmp_path / "cluster", clip, size=2) as cluster:
        leader, epoch = cluster.wait_led("main")
        for instance in cluster.instances:
            wait_for(lambda i=instance: gauge(i, "forumcast_stage_leader_epoch", stage="main") == epoch)

        follower = next(i for i in cluster.instances if i.name != leader)
        lag = "forumcast_redis_stream_lag_seconds"
        wait_for(lambda: (gauge(follower, lag, stage="main") or 0) > 0)  # entries read and timed
        calm = gauge(follower, lag, stage="main")
        assert calm is not None and calm < 0.5
        follower.signal(signal.SIGSTOP)  # the leader goes on writing; this reader falls behind
        time.sleep(1.5)
        follower.signal(signal.SIGCONT)
        wait_for(lambda: (gauge(follower, lag, stage="main") or 0) >= 1.2, timeout=5.0)

        cluster.by_name(leader).kill()
        new_leader, new_epoch = cluster.wait_led("main", not_by=leader)
        assert new_leader == follower.name and new_epoch > epoch
        wait_for(lambda: gauge(follower, "forumcast_stage_leader_epoch", stage="main") == new_epoch)
