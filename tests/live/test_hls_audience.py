"""The LL-HLS audience's contract, run against both flavours: the memory one (one instance)
and the Redis one (instances sharing the event on a real redis-server). Times are explicit
wall-clock seconds: no loop timing is involved."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from server.cluster.hls_audience import RedisAudience
from server.cluster.names import ClusterNames
from server.cluster.plane import Plane
from server.live.hls_audience import Audience, MemoryAudience, Tally, Window
from tests.support.redis_server import RedisServer

T0 = 1_790_000_000.0
WINDOW = {"main": Window(viewers=12.0, clients=6.0)}
INSTANCES = ("a", "b", "c")


@pytest.fixture(params=["memory", "redis"])
async def audiences(request: pytest.FixtureRequest) -> AsyncIterator[list[Audience]]:
    """One audience per instance of the event: a single memory one (every instance is this
    one), or one Redis flavour per instance on the same Redis."""
    if request.param == "memory":
        yield [MemoryAudience()]
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    names = ClusterNames.of(f"audience-{secrets.token_hex(4)}")
    planes = [Plane(server.url, names, instance=i) for i in INSTANCES]
    yield [RedisAudience(plane, instances=lambda: INSTANCES) for plane in planes]
    for plane in planes:
        await plane.close()


async def counted(audiences: list[Audience], now: float) -> tuple[int, list[int], int]:
    """(viewers, each instance's ``here``, clients) as the instances count them at ``now``."""
    tallies: list[Tally] = [(await a.count(WINDOW, {}, now))["main"] for a in audiences]
    assert len({(t.viewers, t.clients) for t in tallies}) == 1, tallies  # every instance agrees
    return tallies[0].viewers, [t.here for t in tallies], tallies[0].clients


async def test_each_player_counts_once_wherever_its_heartbeats_land(audiences: list[Audience]) -> None:
    players = [f"viewer-{n}" for n in range(10)]
    for beat in range(3):  # round robin: each player's beats reach every instance in turn
        for n, player in enumerate(players):
            await audiences[(n + beat) % len(audiences)].heard("main", player, T0 + beat * 4.0)
    viewers, here, clients = await counted(audiences, T0 + 8.0)
    assert viewers == 10 and sum(here) == 10 and clients == 0
    # Each player is counted here by the instance its latest beat reached.
    expected = [sum(1 for n in range(10) if (n + 2) % len(audiences) == i) for i in range(len(audiences))]
    assert here == expected


async def test_players_fall_silent_after_the_window_and_come_back(audiences: list[Audience]) -> None:
    first = audiences[0]
    for player in ("one", "two", "three"):
        await first.heard("main", player, T0)
    await audiences[-1].heard("main", "one", T0 + 10.0)  # one beats again
    assert (await counted(audiences, T0 + 12.0))[0] == 3  # 12 s after: still in the window
    viewers, here, _ = await counted(audiences, T0 + 12.5)
    assert viewers == 1 and sum(here) == 1
    assert (await counted(audiences, T0 + 22.5))[0] == 0
    back = audiences[len(audiences) // 2]
    await back.heard("main", "two", T0 + 30.0)
    viewers, here, _ = await counted(audiences, T0 + 31.0)
    assert viewers == 1 and here == [int(a is back) for a in audiences]
    # Stages are counted apart.
    await first.heard("side", "two", T0 + 30.0)
    tallies = await first.count({**WINDOW, "side": Window(12.0, 6.0)}, {}, T0 + 31.0)
    assert tallies["side"].viewers == 1 and tallies["main"].viewers == 1


async def test_distinct_clients_across_instances_within_the_window(audiences: list[Audience]) -> None:
    for n, audience in enumerate(audiences):  # the same two addresses seen everywhere, one more each
        await audience.count(WINDOW, {"main": {"10.0.0.1", "10.0.0.2", f"10.1.0.{n}"}}, T0)
    assert (await counted(audiences, T0 + 1.0))[2] == 2 + len(audiences)
    await audiences[0].count(WINDOW, {"main": {"10.0.0.1"}}, T0 + 5.0)
    assert (await counted(audiences, T0 + 6.0))[2] == 2 + len(audiences)  # 6 s: still in
    assert (await counted(audiences, T0 + 6.5))[2] == 1
    assert (await counted(audiences, T0 + 11.5))[2] == 0
