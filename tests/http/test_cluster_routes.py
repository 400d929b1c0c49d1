"""``GET /api/v1/cluster`` (server/http/cluster_routes.py) on a real server, alone and on Redis.

Alone, the instance is the whole cluster and leads every stage at epoch 0. On a real Redis
the one instance takes every stage's lease (epoch from ``INCR``, so at least 1) and beats
its heartbeat. Several instances are shown by tests/cluster/test_processes.py.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from tests.conftest import Serve, auth


async def test_alone_the_instance_leads_every_stage(serve: Serve) -> None:
    client = await serve(instance_id="solo")
    answer = await client.get("/api/v1/cluster", headers=auth("ops"))
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == "no-store"
    body = await answer.json()
    assert body["redis"] is False
    [me] = body["instances"]
    assert me["id"] == "solo" and me["leads"] == ["main", "forum-a", "closed", "europe"]
    assert me["viewers"] == 0 and me["publishers"] == 0 and me["started"]
    assert body["stages"] == [
        {
            "id": stage,
            "leader": {"instance": "solo", "epoch": 0},
            "viewers": {"ws": 0, "hls": 0, "hls_clients": 0},
        }
        for stage in ("main", "forum-a", "closed", "europe")
    ]


async def test_who_may_see_the_cluster(serve: Serve) -> None:
    client = await serve()
    assert (await client.get("/api/v1/cluster")).status == 401
    assert (await client.get("/api/v1/cluster", headers=auth("viewer:closed"))).status == 403
    answer = await client.get("/api/v1/cluster", headers=auth("producer", stage="forum-a"))
    assert answer.status == 200
    # a producer sees the stages its token covers, and no other
    assert [s["id"] for s in (await answer.json())["stages"]] == ["forum-a"]
    # the rest of the API still answers
    assert (await client.get("/api/v1/stages/main")).status == 200


@pytest.mark.parametrize("store_settings", ["redis"], indirect=True)
async def test_on_redis_the_instance_takes_every_lease(serve: Serve, store_settings: dict[str, Any]) -> None:
    client = await serve(**store_settings)
    body: dict[str, Any] = {}
    for _ in range(100):  # the node settles (1.5 s) before it takes leases
        body = await (await client.get("/api/v1/cluster", headers=auth("ops"))).json()
        if all(stage["leader"] for stage in body["stages"]):
            break
        await asyncio.sleep(0.1)
    assert body["redis"] is True
    me = f"{socket.gethostname()}:8080"
    assert [i["id"] for i in body["instances"]] == [me]
    for stage in body["stages"]:
        assert stage["leader"]["instance"] == me and stage["leader"]["epoch"] >= 1
    metrics = (await (await client.get("/metrics", headers=auth("ops"))).text()).splitlines()
    assert 'forumcast_stage_leader{stage="main"} 1.0' in metrics
    assert "forumcast_cluster_instances 1.0" in metrics
