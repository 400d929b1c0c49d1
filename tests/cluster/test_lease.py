"""Leases and fencing on a real redis-server: one leader per stage, and a former leader
whose lease is gone writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.cluster.entries import ProgramEntry, ProgramKind
from server.cluster.lease import Term, acquire_delay, parse_lease, preference
from server.cluster.names import ClusterNames
from server.cluster.plane import Plane
from tests.support.redis_server import RedisServer


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as server:
        yield server


def planes(redis: RedisServer, *instances: str) -> list[Plane]:
    names = ClusterNames.of("lease-test")
    return [Plane(redis.url, names, instance=i) for i in instances]


async def test_one_leader_per_stage_with_a_new_epoch_each_time(redis: RedisServer) -> None:
    a, b = planes(redis, "a", "b")
    names = a.names
    try:
        lease, epoch = names.lease("main"), names.epoch("main")
        results = await asyncio.gather(*(p.acquire(lease, epoch, 0.5) for p in (a, b, a, b)))
        assert sorted(results) == [0, 0, 0, 1]  # exactly one of four concurrent attempts
        winner = a if results[0] or results[2] else b
        loser = b if winner is a else a
        assert await winner.renew(lease, 1, 0.5)
        assert not await loser.renew(lease, 1, 0.5)  # not its value
        assert parse_lease((await a.leases([lease]))[0]) == (winner.instance, 1)
        await asyncio.sleep(0.7)  # not renewed: it expires
        assert await loser.acquire(lease, epoch, 0.5) == 2
        await loser.release(lease, 2)
        assert (await a.leases([lease]))[0] is None
    finally:
        for plane in (a, b):
            await plane.close()


async def test_a_former_leader_writes_nothing_once_its_lease_is_gone(redis: RedisServer) -> None:
    old, new = planes(redis, "old", "new")
    names = old.names
    entry = ProgramEntry(ProgramKind.INIT, 1, b"init bytes")
    try:
        assert await old.acquire(names.lease("main"), names.epoch("main"), 0.3) == 1
        assert await old.write_program("main", 1, [entry], maxlen=100, state={"source": "a"})
        await asyncio.sleep(0.5)  # the old leader "paused" past its lease
        assert await new.acquire(names.lease("main"), names.epoch("main"), 5) == 2
        fenced = ProgramEntry(ProgramKind.INIT, 1, b"stale init")
        assert not await old.write_program("main", 1, [fenced], maxlen=100, state={"source": "stale"})
        init, entries = await new.program_history("main")
        assert init == b"init bytes" and len(entries) == 1  # nothing of the old leader after
        assert await new.get_json(names.program_state("main")) == {"source": "a"}
        assert await new.write_program("main", 2, [ProgramEntry(ProgramKind.INIT, 2, b"new")], maxlen=100)
        assert (await new.program_history("main"))[0] == b"new"
    finally:
        await old.close()
        await new.close()


def test_terms_stop_trusting_themselves_before_redis_drops_them() -> None:
    term = Term(epoch=3, value="a|3", renewed=10.0, ttl=2.0)
    assert term.valid(11.5) and not term.valid(11.6)  # 80 % of the lease


def test_leadership_spreads_and_every_instance_agrees_on_the_order() -> None:
    instances = ["i1", "i2", "i3"]
    stages = [f"stage-{n}" for n in range(30)]
    firsts = [preference(stage, instances)[0] for stage in stages]
    assert min(firsts.count(i) for i in instances) >= 5  # no instance starved
    assert preference("stage-1", reversed(instances)) == preference("stage-1", instances)
    order = preference("stage-1", instances)
    assert [acquire_delay("stage-1", i, instances) for i in order] == pytest.approx([0.0, 0.3, 0.6])
    assert acquire_delay("stage-1", "new", instances) == pytest.approx(0.9)  # not heard of yet: last
