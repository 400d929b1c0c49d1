"""Three real forumcast processes on one real redis-server, seen from outside (issue 13).

A small event live now (tests/support/cluster.py) with real publishers looping a clip into
its inputs through the first instance; each stage is led by one instance; every instance
serves every stage. The tests
share one cluster (starting three processes costs seconds) and leave it whole: a test that
kills or pauses an instance brings it back before it ends.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from server.media.types import InitSegment
from tests.support.cluster import Cluster, Instance, Recording, assert_timeline, decode_errors

STAGE = "main"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, clip: Path) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("cluster"), clip) as running:
        yield running


def record(instances: list[Instance], seconds: float, stage: str = STAGE) -> list[Recording]:
    """One viewer per instance for ``seconds``, all at once."""

    async def all_of() -> list[Recording]:
        recordings = [Recording(f"{i.ws}/ws/watch/{stage}") for i in instances]
        return await asyncio.gather(*(r.run(seconds) for r in recordings))

    return asyncio.run(all_of())


def assert_reinit_only_for_a_new_configuration(inits: list[InitSegment]) -> None:
    """A viewer is re-initialised only when the decoder configuration changes (the slate's
    picture, say, while a publisher moves to another instance), never for the same one."""
    configs = [tuple(t.config for t in init.tracks) for init in inits]
    assert all(a != b for a, b in itertools.pairwise(configs)), len(configs)


def program_of(instance: Instance) -> dict[str, Any]:
    status, body = instance.get(f"/api/v1/stages/{STAGE}/program", role="producer")
    assert status == 200, body
    program: dict[str, Any] = body["program"]
    return program


def wait_source(cluster: Cluster, source: str, timeout: float = 5.0) -> None:
    """Every live instance says the program shows ``source``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(program_of(i)["source"] == source for i in cluster.instances if i.alive()):
            return
        time.sleep(0.05)
    raise AssertionError(f"not every instance shows {source}: {[program_of(i) for i in cluster.instances]}")


def restore(cluster: Cluster, instance: Instance) -> None:
    """Bring a killed instance back (same port, same id) and wait until it serves."""
    instance.start()
    instance.wait_ready()


def test_one_program_byte_identical_on_three_instances_across_takes(cluster: Cluster, tmp_path: Path) -> None:
    a, b, c = cluster.instances
    leader, _ = cluster.wait_led(STAGE)
    followers = [i for i in cluster.instances if i.name != leader]
    took: dict[str, list[float]] = {"leader": [], "follower": []}

    async def takes() -> None:
        # two takes issued on B and C while everyone watches, then back to automation on A
        await asyncio.sleep(6)
        for instance, source in ((b, "stern-uk"), (c, "main-cam")):
            status, body = await asyncio.to_thread(
                instance.post, f"/api/v1/stages/{STAGE}/take", {"input": source}
            )
            assert status == 200, body
            assert body["program"]["mode"] == "manual"
            await asyncio.to_thread(wait_source, cluster, source)
            await asyncio.sleep(6)
        # a take answers once the leader has it armed; from a follower it travels over
        # pub/sub and back: the same switch, the same keyframe, a few milliseconds later
        pairs = [(cluster.by_name(leader), "leader"), (followers[0], "follower")] * 3
        for (instance, kind), source in zip(pairs, ["stern-uk", "main-cam"] * 3, strict=True):
            started = time.monotonic()
            status, body = await asyncio.to_thread(
                instance.post, f"/api/v1/stages/{STAGE}/take", {"input": source}
            )
            took[kind].append(time.monotonic() - started)
            assert status == 200, body
            await asyncio.to_thread(wait_source, cluster, source)
        status, body = await asyncio.to_thread(a.post, f"/api/v1/stages/{STAGE}/auto", {})
        assert status == 200 and body["program"]["mode"] == "auto"

    async def watch() -> list[Recording]:
        viewers = [Recording(f"{i.ws}/ws/watch/{STAGE}") for i in (a, b, c, b, c, c)]
        return await asyncio.gather(*(v.run(30) for v in viewers), takes())  # type: ignore[return-value]

    async def counted() -> list[int]:
        await asyncio.sleep(4)  # everyone connected, a heartbeat or two later
        return [(await asyncio.to_thread(program_of, i))["viewers"] for i in cluster.instances]

    async def both() -> tuple[list[Recording], list[int]]:
        recordings, counts = await asyncio.gather(watch(), counted())
        return recordings[:6], counts

    # every instance lists the inputs live, with the instance their publisher is connected to
    for instance in (b, c):
        listed = cluster.wait_publishing(instance)
        assert {listed[i]["publisher"]["instance"] for i in cluster.publishers} == {"a"}
    recordings, counts = asyncio.run(both())
    # six viewers over three instances: every instance says six, and who makes the program
    assert counts == [6, 6, 6]
    assert {program_of(i)["leader"]["instance"] for i in cluster.instances} == {leader}
    streams = [r.fragment_bytes() for r in recordings[:3]]
    assert all(r.close_code is None for r in recordings)
    common = min(len(s) for s in streams)
    assert common >= 100, [len(s) for s in streams]  # 30 s at five fragments a second
    # the same fragments, byte for byte, in the same order, after each viewer's first keyframe
    tails = [s[-common + 10 :] for s in streams]
    assert tails[0] == tails[1] == tails[2]
    for recording in recordings[:3]:
        inits, fragments = recording.parsed()
        assert len(inits) == 1  # takes between inputs of one configuration: no re-init
        assert_timeline(fragments)
    assert decode_errors(recordings[1].stream(), tmp_path / "b.mp4") == ""
    # the switches reached every viewer as `now` events: main-playout, then main-cam
    for recording in recordings[:3]:
        sources = [e["program"]["source"] for e in recording.events if e.get("type") == "now"]
        assert "stern-uk" in sources and "main-cam" in sources[sources.index("stern-uk") :]
    assert statistics.median(took["follower"]) - statistics.median(took["leader"]) < 0.1, took


def test_ll_hls_is_the_same_on_every_instance(cluster: Cluster) -> None:
    a, b, _ = cluster.instances
    for _ in range(20):
        status, first = a.get(f"/live/{STAGE}/media.m3u8", role=None)
        assert status == 200
        lines = first.decode().splitlines()
        last = max(i for i, line in enumerate(lines) if line.startswith("#EXT-X-PART:"))
        msn = int(next(x for x in lines if x.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
        status, second = b.get(f"/live/{STAGE}/media.m3u8", role=None)
        other = second.decode().splitlines()
        if f"#EXT-X-MEDIA-SEQUENCE:{msn}" in other and len(other) > last:
            break
        time.sleep(0.2)
    # the same playlist, up to the last part the first instance had
    assert lines[: last + 1] == other[: last + 1]
    # in playlist order: the init, then the newest segments and parts (older ones may
    # leave the window while we fetch)
    listed = [
        line.split('URI="')[1].split('"')[0] if 'URI="' in line else line
        for line in lines[: last + 1]
        if 'URI="' in line or (line and not line.startswith("#"))
    ]
    uris = [listed[0], *listed[-12:]]
    assert "/init/" in uris[0] and any("/part/" in u for u in uris) and any("/seg/" in u for u in uris)
    base = f"/live/{STAGE}/"
    for uri in uris:
        path = uri if uri.startswith("/") else base + uri
        got_a, got_b = a.get(path, role=None), b.get(path, role=None)
        assert got_a[0] == got_b[0] == 200, (path, got_a[0], got_b[0])
        assert got_a[1] == got_b[1], path


def test_a_killed_leader_is_replaced_and_viewers_stay(cluster: Cluster, tmp_path: Path) -> None:
    leader, epoch = cluster.wait_led(STAGE)
    victim = cluster.by_name(leader)
    survivors = [i for i in cluster.instances if i is not victim]
    replaced: dict[str, Any] = {}

    async def kill_then_watch() -> list[Recording]:
        async def kill() -> None:
            await asyncio.sleep(3)
            killed = time.monotonic()
            await asyncio.to_thread(victim.kill)
            replaced["leader"] = await asyncio.to_thread(cluster.wait_led, STAGE, not_by=leader)
            replaced["after"] = time.monotonic() - killed
            replaced["killed"] = killed

        viewers = [Recording(f"{i.ws}/ws/watch/{STAGE}") for i in survivors]
        recordings = await asyncio.gather(*(v.run(12) for v in viewers), kill())
        return recordings[:2]  # type: ignore[return-value]

    try:
        recordings = asyncio.run(kill_then_watch())
        assert replaced["after"] < 3.0, replaced
        assert replaced["leader"][1] > epoch  # a new term: fenced off from the dead one's
        for recording in recordings:
            assert recording.close_code is None  # still connected
            inits, fragments = recording.parsed()
            assert_reinit_only_for_a_new_configuration(inits)
            assert_timeline(fragments)
            after = [t for t, _ in recording.media if t > replaced["killed"]]
            assert after, "nothing arrived after the kill"
            gap = max(
                later - earlier for earlier, later in zip([replaced["killed"], *after], after, strict=False)
            )
            # the freeze: the lease's TTL, then the input's next keyframe (benchmarked in
            # tests/bench/bench_cluster.py); here only that it ends
            assert gap < 5.0, gap
            assert decode_errors(recording.stream(), tmp_path / "across.mp4") == ""
    finally:
        restore(cluster, victim)


def test_a_paused_leader_is_fenced_and_comes_back_as_a_follower(cluster: Cluster) -> None:
    leader, epoch = cluster.wait_led(STAGE)
    paused = cluster.by_name(leader)
    client = redis.Redis.from_url(cluster.redis.url)
    stream = next(iter(client.scan_iter(match=f"forumcast:*:prog:{STAGE}", count=1000)))
    paused.signal(signal.SIGSTOP)
    try:
        _, new_epoch = cluster.wait_led(STAGE, not_by=leader)
        assert new_epoch > epoch
        time.sleep(1.0)
    finally:
        paused.signal(signal.SIGCONT)
    time.sleep(2.5)  # the woken one has every chance to write with its old epoch
    epochs = [int(fields[b"e"]) for _, fields in client.xrange(stream, count=100_000)]
    # the stream's epochs never go back: nothing of the old term after the new one began
    first_new = epochs.index(new_epoch)
    assert all(e >= new_epoch for e in epochs[first_new:]), epochs[first_new:]
    # it knows it lost: it names the new term's leader (or a later one), never its old term
    now_leader = paused.leader_of(STAGE)
    assert now_leader is not None and now_leader[1] >= new_epoch, now_leader
    if now_leader[0] != leader:
        _, metrics = paused.get("/metrics")
        assert f'forumcast_stage_leader{{stage="{STAGE}"}} 0.0' in metrics.decode().splitlines()
    # and it serves its viewers as a follower
    [recording] = record([paused], 3)
    assert len(recording.fragment_bytes()) >= 5
    client.close()


def test_the_publishers_instance_killed(cluster: Cluster, tmp_path: Path) -> None:
    """The instance the publishers and two viewers are connected to dies: the publishers
    reconnect to the next server on their list and the program continues; the dead
    instance's viewers leave the global count within a heartbeat's TTL (3 s)."""
    [held] = {i["publisher"]["instance"] for i in cluster.wait_publishing(cluster.instances[0]).values()}
    a = cluster.by_name(held)  # the publishers' instance, with two viewers
    c, b = [i for i in cluster.instances if i is not a]  # one viewer on c; b counts
    result: dict[str, Any] = {}

    async def scenario() -> list[Recording]:
        viewers = [Recording(f"{i.ws}/ws/watch/{STAGE}") for i in (a, a, c)]
        tasks = [asyncio.ensure_future(v.run(16)) for v in viewers]
        await asyncio.sleep(3)
        result["before"] = (await asyncio.to_thread(program_of, b))["viewers"]
        await asyncio.to_thread(a.kill)
        killed = result["killed"] = time.monotonic()
        while time.monotonic() - killed < 8:
            if (await asyncio.to_thread(program_of, b))["viewers"] == 1:
                result["left_after"] = time.monotonic() - killed
                break
            await asyncio.sleep(0.1)
        listed = await asyncio.to_thread(cluster.wait_publishing, b, 10)
        result["moved_to"] = {i["publisher"]["instance"] for i in listed.values()}
        await asyncio.to_thread(wait_source, cluster, "main-cam", 10)
        result["back_after"] = time.monotonic() - killed
        done = await asyncio.gather(*tasks, return_exceptions=True)
        return [r for r in done if isinstance(r, Recording)]

    try:
        recordings = asyncio.run(scenario())
        assert result["before"] == 3
        assert result.get("left_after", 99) < 4.0, result
        assert len(result["moved_to"]) == 1 and held not in result["moved_to"], result
        [survivor] = [r for r in recordings if r.url.startswith(c.ws)]
        assert survivor.close_code is None
        inits, fragments = survivor.parsed()
        assert_reinit_only_for_a_new_configuration(inits)
        assert_timeline(fragments)
        assert [t for t, _ in survivor.media if t > result["killed"] + result["back_after"]]
        assert decode_errors(survivor.stream(), tmp_path / "moved.mp4") == ""
    finally:
        restore(cluster, a)
        # the publishers stay where they are now; the next tests do not mind where


def test_redis_restart_freezes_and_resumes_keeping_delays_and_meetings(cluster: Cluster) -> None:
    a, b, c = cluster.instances
    status, body = a.post(f"/api/v1/stages/{STAGE}/delay", {"minutes": 7})
    assert status == 200, body
    status, exhibits = a.get("/api/v1/exhibits", role=None)
    exhibit = exhibits["items"][0]["id"]
    slot = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    form = {"name": "Li Wei", "organisation": "Shenzhen Green Fund", "email": "li.wei@example.com",
            "message": "A meeting about the pilot?", "slots": [slot.isoformat()]}  # fmt: skip
    status, made = b.post(f"/api/v1/exhibits/{exhibit}/meeting-requests", form, role="ops")
    assert status == 201, made
    timing: dict[str, float] = {}

    async def scenario() -> list[Recording]:
        async def restart() -> None:
            await asyncio.sleep(3)
            timing["down"] = time.monotonic()
            await asyncio.to_thread(cluster.redis.stop)
            await asyncio.sleep(2)
            await asyncio.to_thread(cluster.redis.start)
            timing["up"] = time.monotonic()

        viewers = [Recording(f"{i.ws}/ws/watch/{STAGE}") for i in (a, b, c)]
        recordings = await asyncio.gather(*(v.run(14) for v in viewers), restart())
        return recordings[:3]  # type: ignore[return-value]

    recordings = asyncio.run(scenario())
    for recording in recordings:
        assert recording.close_code is None  # frozen, never disconnected
        resumed = [t for t, _ in recording.media if t > timing["up"]]
        assert resumed and resumed[0] - timing["up"] < 5.0, resumed[:1]
        assert_timeline(recording.parsed()[1])
    # what the store held came back with Redis (its AOF)
    status, stage = c.get(f"/api/v1/stages/{STAGE}", role=None)
    assert status == 200 and stage["delay_minutes"] == 7, stage
    status, listed = c.get(f"/api/v1/exhibits/{exhibit}/meeting-requests")
    assert status == 200 and [r["id"] for r in listed["meeting_requests"]] == [made["id"]]
