"""Who counts as an LL-HLS viewer, over real HTTP: playlists and media carry nothing per
viewer, our players count themselves with heartbeats of server-signed ids, and invented or
forged ids count nothing."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import aiohttp

from server.clock import ManualClock
from server.http.keys import LIVE
from tests.conftest import Serve, at, auth
from tests.live.test_hls_collapse import started
from tests.live.test_hls_http import MORNING, newest


async def viewer_id(client: Any, stage: str = "main", **headers: str) -> str:
    response = await client.post(f"/live/{stage}/viewer-id", headers=headers)
    assert response.status == 201, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert set(body) == {"id", "interval"}
    return str(body["id"])


async def beat(client: Any, viewer: Any, stage: str = "main", **headers: str) -> aiohttp.ClientResponse:
    response: aiohttp.ClientResponse = await client.post(
        f"/live/{stage}/heartbeat", json={"id": viewer}, headers=headers
    )
    return response


async def hls_viewers(app: Any, stage: str = "main") -> int:
    """The stage's HLS viewers, counted now (as the hub's tick does every second)."""
    await app[LIVE].count_hls()
    return int(app[LIVE].hls[stage].tally.viewers)


async def code_of(response: aiohttp.ClientResponse) -> tuple[int, str]:
    return response.status, (await response.json())["error"]["code"]


async def test_two_players_get_the_same_playlists_at_the_same_urls(serve: Serve) -> None:
    client = await serve(hls_target_duration=1.0)
    base = f"http://127.0.0.1:{client.port}"
    async with (
        aiohttp.ClientSession(headers={"User-Agent": "player-one"}) as one,
        aiohttp.ClientSession(headers={"User-Agent": "player-two"}) as two,
    ):

        async def both(path: str) -> tuple[bytes, bytes]:
            async def read(session: aiohttp.ClientSession) -> bytes:
                async with session.get(base + path) as response:
                    assert response.status == 200, path
                    return await response.read()

            first, second = await asyncio.gather(read(one), read(two))
            return first, second

        first, second = await both("/live/main/index.m3u8")
        assert first == second and b"sid" not in first
        media = "/live/main/" + next(ln for ln in first.decode().splitlines() if ln.startswith("media"))
        assert media == "/live/main/media.m3u8"
        for _ in range(50):  # the slate makes parts on its own
            text = (await both(media))[0].decode()
            if "#EXT-X-PART:" in text:
                break
            await asyncio.sleep(0.1)
        msn, index = newest(text)
        # Both wait for the same next part: woken by it, they get the same state of the playlist.
        first, second = await both(f"{media}?_HLS_msn={msn}&_HLS_part={index + 1}")
        assert first == second
        uris = re.findall(r'URI="([^"]+)"', first.decode()) + [
            ln for ln in first.decode().splitlines() if ln and not ln.startswith("#")
        ]
        assert uris and all("?" not in u and "sid" not in u for u in uris), uris
        part = next(u for u in uris if "/part/" in u)
        first, second = await both(f"/live/main/{part}")
        assert first == second and b"moof" in first[:64]


async def test_heartbeats_count_each_signed_id_until_it_falls_silent(serve: Serve) -> None:
    clock = ManualClock(at(MORNING))
    client = await serve(clock=clock, hls_target_duration=1.0)
    response = await client.post("/live/main/viewer-id")
    assert (await response.json())["interval"] == 2.0  # two target durations
    ids = [await viewer_id(client) for _ in range(5)]
    assert len(set(ids)) == 5
    for viewer in ids + ids[:2]:  # a repeated heartbeat is the same viewer
        response = await beat(client, viewer)
        assert response.status == 204 and response.headers["Cache-Control"] == "no-store"
    assert await hls_viewers(client.app) == 5
    await clock.run(4.0)  # two intervals: three of them beat again, two are late
    for viewer in ids[:3]:
        assert (await beat(client, viewer)).status == 204
    assert await hls_viewers(client.app) == 5
    await clock.run(2.5)  # three intervals since the two last beat: gone
    assert await hls_viewers(client.app) == 3
    await clock.run(1.0)  # the hub's tick publishes the count
    metrics = await (await client.get("/metrics")).text()
    assert 'forumcast_viewers{protocol="hls",stage="main"} 3.0' in metrics
    await clock.run(6.0)
    assert await hls_viewers(client.app) == 0
    # A viewer that comes back after a pause is counted again.
    assert (await beat(client, ids[4])).status == 204
    assert await hls_viewers(client.app) == 1


async def test_invented_and_forged_ids_count_nothing(serve: Serve) -> None:
    client = await serve()
    invented = [secrets.token_urlsafe(28)[:38] for _ in range(3000)]
    for start in range(0, len(invented), 100):
        answers = await asyncio.gather(*(beat(client, v) for v in invented[start : start + 100]))
        for response in answers:
            assert await code_of(response) == (422, "hls.invalid_viewer")
    assert await hls_viewers(client.app) == 0
    real = await viewer_id(client)
    forged = real[:16] + ("A" if real[16] != "A" else "B") + real[17:]  # our nonce, a wrong signature
    closed = await viewer_id(client, "closed", **auth("viewer:closed"))
    for bad in (forged, real[:-1], real + "x", closed, "", 42, None, ["x"]):
        assert await code_of(await beat(client, bad)) == (422, "hls.invalid_viewer"), bad
    # Bodies that are not a JSON object with an id: clear errors, nothing counted.
    hb = "/live/main/heartbeat"
    assert await code_of(await client.post(hb, data="{", headers={"Content-Type": "application/json"})) == (
        400,
        "request.bad_json",
    )
    assert await code_of(await client.post(hb, json=[real])) == (422, "hls.invalid_viewer")
    assert await code_of(await client.post(hb, data=real)) == (415, "request.unsupported_media_type")
    assert await code_of(await client.post(hb, json={"id": real, "pad": "x" * 2000})) == (
        413,
        "request.too_large",
    )
    assert await code_of(await beat(client, real, "nowhere")) == (404, "live.unknown_stage")
    assert await hls_viewers(client.app) == 0
    # Nothing else broke: the real id still counts, once.
    assert (await beat(client, real)).status == 204
    assert await hls_viewers(client.app) == 1


async def test_viewer_ids_are_rate_limited_per_address(serve: Serve) -> None:
    client = await serve()
    ids = [await viewer_id(client) for _ in range(30)]
    response = await client.post("/live/main/viewer-id")
    assert await code_of(response) == (429, "hls.rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    # The ids handed out still count.
    for viewer in ids:
        assert (await beat(client, viewer)).status == 204
    assert await hls_viewers(client.app) == 30


async def test_closed_stages_need_the_token_for_ids_and_heartbeats(serve: Serve) -> None:
    client = await serve()
    invited = auth("viewer:closed")
    assert await code_of(await client.post("/live/closed/viewer-id")) == (401, "auth.missing_token")
    wrong = await client.post("/live/closed/viewer-id", headers=auth("viewer:main"))
    assert await code_of(wrong) == (403, "auth.forbidden")
    viewer = await viewer_id(client, "closed", **invited)
    assert await code_of(await beat(client, viewer, "closed")) == (401, "auth.missing_token")
    token = invited["Authorization"].split()[1]
    query = await client.post("/live/closed/heartbeat", params={"token": token}, json={"id": viewer})
    assert query.status == 204
    assert (await beat(client, viewer, "closed", **invited)).status == 204
    assert await hls_viewers(client.app, "closed") == 1 and await hls_viewers(client.app) == 0


async def test_distinct_client_addresses_that_fetch_media_are_estimated(serve: Serve) -> None:
    clock = ManualClock(at(MORNING))
    client = await serve(clock=clock, hls_target_duration=1.0)
    text = await started(clock, client)
    hub = client.app[LIVE]
    part = next(u for u in re.findall(r'URI="([^"]+)"', text) if "/part/" in u)
    base = f"http://127.0.0.1:{client.port}/live/main/"

    async def fetch(address: str, path: str) -> None:
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(base + path) as response,
        ):
            assert response.status == 200

    for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        await fetch(address, part)
    await fetch("127.0.0.4", part)  # the same client again
    await fetch("127.0.0.5", "media.m3u8")  # playlists alone count nothing
    await hub.count_hls()
    assert hub.hls["main"].tally.clients == 3 and hub.hls["closed"].tally.clients == 0
    response = await client.get("/api/v1/cluster", headers=auth("ops"))
    main = next(s for s in (await response.json())["stages"] if s["id"] == "main")
    assert main["viewers"] == {"ws": 0, "hls": 0, "hls_clients": 3}
    metrics = await (await client.get("/metrics")).text()
    assert 'forumcast_hls_clients{stage="main"} 3.0' in metrics
    await clock.run(2.0)
    await fetch("127.0.0.2", part)
    await hub.count_hls()
    assert hub.hls["main"].tally.clients == 3  # 2 s since: within three target durations
    await clock.run(1.5)
    await hub.count_hls()
    assert hub.hls["main"].tally.clients == 1  # only the one that fetched again
