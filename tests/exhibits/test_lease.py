"""Build leases on a real Redis, the fenced hall record, jobs as records and their mirror."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from exhibits.job_mirror import JobMirror
from exhibits.jobs import Job, JobState
from exhibits.lease import BuildLease
from exhibits.modelstore import ModelAsset
from exhibits.shared import SharedExhibition, check_blob_size
from server.errors import ForumcastError
from server.store.redis import connect
from tests.exhibits.test_jobs import result
from tests.support.redis_server import RedisServer

NAMESPACE = "lease-test"


@pytest.fixture
async def shared(redis_server: RedisServer) -> AsyncIterator[SharedExhibition]:
    raw = redis.asyncio.Redis.from_url(redis_server.url)
    keys = [key async for key in raw.scan_iter(f"forumcast:{NAMESPACE}:*")]
    if keys:
        await raw.delete(*keys)
    await raw.aclose()
    one = SharedExhibition(connect(redis_server.url, decode_responses=False), NAMESPACE, owner="a")
    yield one
    await one.close()


def lease(shared: SharedExhibition, name: str, **timing: float) -> BuildLease:
    return BuildLease(shared.client, f"forumcast:{NAMESPACE}:build-lease:{name}", "test", **timing)


async def test_one_holder_at_a_time_and_free_after_release(shared: SharedExhibition) -> None:
    first, second = lease(shared, "x"), lease(shared, "x")
    async with first.holding() as mine:
        assert mine and await first.taken()
        async with second.holding() as theirs:
            assert not theirs
    assert not await first.taken()
    async with second.holding() as theirs:
        assert theirs


async def test_the_holder_renews_past_the_ttl_and_a_dead_holder_frees_it(shared: SharedExhibition) -> None:
    holder = lease(shared, "y", ttl=0.3, renew_every=0.1)
    async with holder.holding() as mine:
        assert mine
        await asyncio.sleep(0.6)  # twice the ttl: only renewal keeps it
        assert await holder.taken() and not holder.lost
    dead = lease(shared, "z", ttl=0.2, renew_every=0.1)
    assert await dead.acquire()  # and never renewed: the holder died
    await asyncio.sleep(0.3)
    assert await lease(shared, "z").acquire()


async def test_a_hall_is_recorded_only_under_the_lease_still_held(shared: SharedExhibition) -> None:
    sha = "ab" * 32
    stale = lease(shared, "hall:k", ttl=0.2, renew_every=0.1)
    assert await stale.acquire()
    await asyncio.sleep(0.3)  # paused past its lease; another instance took over
    fresh = shared.lease("hall:k")
    assert await fresh.acquire()
    assert not await shared.record_hall(stale, "k", sha, 10)
    assert await shared.hall("k") is None and await shared.builds() == {}
    assert await shared.record_hall(fresh, "k", sha, 10)
    assert await shared.hall("k") == (sha, 10) and await shared.builds() == {"hall": 1}


async def test_blobs_are_stored_once_and_limited(shared: SharedExhibition) -> None:
    assert await shared.put_blob("cd" * 32, b"glb", what="x")
    assert not await shared.put_blob("cd" * 32, b"glb", what="x")
    assert await shared.get_blob("cd" * 32) == b"glb" and await shared.get_blob("ef" * 32) is None
    with pytest.raises(ForumcastError) as refused:
        check_blob_size(11, limit=10, what="LOD 0 of the model")
    assert refused.value.code == "model.too_large" and "at most 10 bytes" in refused.value.message
    check_blob_size(10, limit=10, what="LOD 0 of the model")


def test_a_job_survives_its_record() -> None:
    job = Job(id="j", exhibit="cn-a-01", filename="a.stl", size=5)
    job.move(JobState.RUNNING)
    job.asset = ModelAsset.from_result("cn-a-01", result(), created="2020-12-06T00:00:00+00:00", source="s")
    job.move(JobState.DONE)
    again = Job.from_record(job.to_record())
    assert again.to_json(ModelAsset.to_json) == job.to_json(ModelAsset.to_json)
    failed = Job(id="k", exhibit="e", filename="f", size=1, error=ForumcastError("model.corrupt", "bad"))
    failed.move(JobState.FAILED)
    assert Job.from_record(failed.to_record()).to_json(ModelAsset.to_json)["error"] == {
        "code": "model.corrupt",
        "message": "bad",
    }


async def test_the_mirror_writes_each_jobs_newest_state_last() -> None:
    written: list[dict[str, Any]] = []
    gate = asyncio.Event()

    async def save(record: dict[str, Any]) -> None:
        await gate.wait()
        written.append(record)

    mirror = JobMirror(save)
    job = Job(id="j", exhibit="e", filename="f", size=1)
    mirror.changed(job)
    await asyncio.sleep(0)  # its write begins
    for step in range(10):  # a burst of progress while the first write is under way
        job.progress, job.step = step / 10, f"step {step}"
        mirror.changed(job)
    gate.set()
    await mirror.flush()
    assert [r["step"] for r in written] == ["queued", "step 9"]
    await mirror.close()
