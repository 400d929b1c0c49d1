"""Blocking reloads collapsed at the origin, over real HTTP on a manual clock: requests for
the same state of the playlist share one wait and one render, a requester that goes away
breaks nobody else's answer, the bound still ends in a 503, and a held part is one wait."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import aiohttp

from server.clock import ManualClock
from server.http.keys import LIVE, METRICS
from server.media.hls_reload import Reload
from tests.conftest import Serve, at
from tests.live.test_hls_http import MORNING, newest

PLAYERS = 200


def sample(client: Any, name: str, stage: str = "main") -> float:
    value = client.app[METRICS].registry.get_sample_value(name, {"stage": stage})
    return 0.0 if value is None else float(value)


async def until(check: Any, what: str, timeout: float = 10.0) -> None:
    """Real time, polling: for what other tasks (the requests) do meanwhile."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def started(clock: ManualClock, client: Any) -> str:
    """Run the slate on the manual clock until the playlist lists parts; the playlist. (The
    slate is encoded in a thread at start, in real time: let that happen too.)"""
    for _ in range(300):
        await clock.run(0.2)
        await asyncio.sleep(0.05)
        text = await (await client.get("/live/main/media.m3u8")).text()
        if text.count("#EXT-X-PART:") >= 2:
            return str(text)
    raise AssertionError("the slate made no parts")


async def test_players_waiting_for_the_next_part_cost_one_render(serve: Serve) -> None:
    clock = ManualClock(at(MORNING))
    client = await serve(clock=clock, hls_target_duration=1.0)
    msn, index = newest(await started(clock, client))
    base = f"http://127.0.0.1:{client.port}/live/main/media.m3u8?_HLS_msn={msn}&_HLS_part={index + 1}"
    renders = sample(client, "forumcast_hls_playlist_renders_total")
    waits = sample(client, "forumcast_hls_reload_wait_seconds_count")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def player() -> tuple[int, bytes]:
            async with session.get(base) as response:
                return response.status, await response.read()

        players = [asyncio.create_task(player()) for _ in range(PLAYERS)]
        # The clock stands still: no part comes until every player is held.
        await until(lambda: sample(client, "forumcast_hls_waiting_requests") == PLAYERS, "all players held")
        assert sample(client, "forumcast_hls_playlist_renders_total") == renders
        output = client.app[LIVE].hls["main"]
        assert len(output._waiters) == 1  # one wake-up for them all
        await clock.run(0.4)  # the next part (and maybe one more) is made
        answers = await asyncio.gather(*players)
    assert {status for status, _ in answers} == {200}
    bodies = {body for _, body in answers}
    assert len(bodies) == 1  # the same bytes for everyone
    assert newest(bodies.pop().decode()) >= (msn, index + 1)
    assert sample(client, "forumcast_hls_playlist_renders_total") - renders == 1
    assert sample(client, "forumcast_hls_reload_wait_seconds_count") - waits == PLAYERS
    assert sample(client, "forumcast_hls_waiting_requests") == 0
    assert len(output._reloads) == 0  # the meeting is gone


async def test_a_first_requester_that_goes_away_breaks_nobody(serve: Serve) -> None:
    clock = ManualClock(at(MORNING))
    client = await serve(clock=clock, hls_target_duration=1.0)
    output = client.app[LIVE].hls["main"]
    msn, index = newest(await started(clock, client))
    reload = Reload(msn, index + 1)
    first = asyncio.create_task(output.blocking_playlist(reload))
    await until(lambda: reload in output._reloads, "the first requester's wait")
    others = [asyncio.create_task(output.blocking_playlist(reload)) for _ in range(5)]
    # Over HTTP too: a player that hangs up mid-wait.
    url = f"http://127.0.0.1:{client.port}/live/main/media.m3u8?_HLS_msn={msn}&_HLS_part={index + 1}"
    async with aiohttp.ClientSession() as session:
        hung_up = asyncio.create_task(session.get(url))
        await until(lambda: sample(client, "forumcast_hls_waiting_requests") == 7, "all held")
        hung_up.cancel()
        first.cancel()
        await asyncio.sleep(0.05)
    assert first.cancelled()
    assert reload in output._reloads  # the shared wait goes on for the others
    await clock.run(0.4)
    bodies = await asyncio.gather(*others)
    assert len(set(bodies)) == 1 and bodies[0] is not None
    assert newest(bodies[0].decode()) >= (msn, index + 1)
    # And a request for that state now is answered at once, with the playlist as it is now.
    response = await client.get(url.split(str(client.port), 1)[1])
    assert response.status == 200
    assert newest(await response.text()) >= newest(bodies[0].decode())


async def test_the_bound_still_ends_in_a_503_for_every_waiting_player(serve: Serve) -> None:
    clock = ManualClock(at(MORNING))
    client = await serve(clock=clock, hls_target_duration=1.0)
    msn, index = newest(await started(clock, client))
    await client.app[LIVE].programs["main"].slate.close()  # no more parts
    url = f"/live/main/media.m3u8?_HLS_msn={msn}&_HLS_part={index + 1}"
    players = [asyncio.create_task(client.get(url)) for _ in range(20)]
    await until(lambda: sample(client, "forumcast_hls_waiting_requests") == 20, "all held")
    await clock.run(2.9)  # three target durations (3 s) have not passed yet
    assert not any(p.done() for p in players)
    await clock.run(0.2)
    answers = await asyncio.gather(*players)
    assert [r.status for r in answers] == [503] * 20
    assert {(await r.json())["error"]["code"] for r in answers} == {"hls.not_yet"}
    assert sample(client, "forumcast_hls_waiting_requests") == 0


async def test_the_preload_hinted_part_is_one_wait_for_every_player(serve: Serve) -> None:
    clock = ManualClock(at(MORNING))
    client = await serve(clock=clock, hls_target_duration=1.0)
    output = client.app[LIVE].hls["main"]
    text = await started(clock, client)
    hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    number = output.packager.next_part_number
    assert hint.endswith(f"part/{number}.m4s")
    players = [asyncio.create_task(client.get(f"/live/main/{hint}")) for _ in range(50)]
    await until(lambda: sample(client, "forumcast_hls_waiting_requests") == 50, "all held")
    assert number in output._parts and len(output._parts) == 1  # one wait for all of them
    await clock.run(0.4)
    answers = await asyncio.gather(*players)
    assert {r.status for r in answers} == {200}
    assert len({await r.read() for r in answers}) == 1
    assert len(output._parts) == 0


async def test_a_part_just_after_the_hint_is_held_too_and_further_ones_are_refused(serve: Serve) -> None:
    # Behind a front, a player's playlist may come from an instance a part or two ahead of
    # the one its part request reaches: that request waits instead of getting a 404.
    clock = ManualClock(at(MORNING))
    client = await serve(clock=clock, hls_target_duration=1.0)
    output = client.app[LIVE].hls["main"]
    text = await started(clock, client)
    hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    number = output.packager.next_part_number
    ahead = hint.replace(f"part/{number}.m4s", f"part/{number + 2}.m4s")
    too_far = hint.replace(f"part/{number}.m4s", f"part/{number + 3}.m4s")
    refused = await client.get(f"/live/main/{too_far}")
    assert refused.status == 404 and (await refused.json())["error"]["code"] == "hls.gone"
    held = asyncio.create_task(client.get(f"/live/main/{ahead}"))
    await until(lambda: sample(client, "forumcast_hls_waiting_requests") == 1, "held")
    while output.packager.part(number + 2) is None:
        assert not held.done()
        await clock.run(0.2)
        await asyncio.sleep(0.01)
    answer = await held
    assert answer.status == 200
    assert await answer.read() == output.packager.part(number + 2).data  # type: ignore[union-attr]
