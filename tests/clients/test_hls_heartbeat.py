"""Our players' heartbeats go where they play from: ``forumcast watch --hls`` played through
a front (a small reverse proxy on loopback, under a path prefix) sends its viewer-id and
heartbeat requests through that front too, with the playlist's query, and the origin behind
it counts the player once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from clients.hls_heartbeat import beside
from clients.watch import watch_hls
from server.clock import ManualClock
from tests.conftest import Serve, at
from tests.live.test_hls_viewers import hls_viewers
from tests.web.test_pages import MORNING


def test_beside_keeps_the_folder_the_host_and_the_query() -> None:
    url = "https://front.example:8443/cdn/live/main/index.m3u8?token=T"
    assert beside(url, "heartbeat") == "https://front.example:8443/cdn/live/main/heartbeat?token=T"
    assert beside("http://h/live/main/index.m3u8", "viewer-id") == "http://h/live/main/viewer-id"


@contextlib.asynccontextmanager
async def front_to(origin: str, seen: list[tuple[str, str]]) -> AsyncIterator[TestServer]:
    """A front at ``/cdn/…`` passing every request to ``origin`` and noting it."""
    session = aiohttp.ClientSession()

    async def proxy(request: web.Request) -> web.StreamResponse:
        path = request.path_qs.removeprefix("/cdn")
        seen.append((request.method, request.path))
        async with session.request(
            request.method,
            origin + path,
            data=await request.read(),
            headers={"Content-Type": request.content_type},
        ) as answer:
            body = await answer.read()
            return web.Response(status=answer.status, body=body, content_type=answer.content_type)

    app = web.Application()
    app.router.add_route("*", "/cdn/{tail:.*}", proxy)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()
        await session.close()


async def test_watch_hls_through_a_front_beats_through_it(serve: Serve) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0), hls_target_duration=1.0)
    seen: list[tuple[str, str]] = []
    async with front_to(f"http://127.0.0.1:{client.port}", seen) as front:
        url = f"http://127.0.0.1:{front.port}/cdn/live/main/index.m3u8"
        watching = asyncio.create_task(watch_hls(url, duration=3.0))
        counts = []
        for _ in range(5):
            await asyncio.sleep(0.5)
            counts.append(await hls_viewers(client.app))
        report = await watching
    assert not report.refused and report.parts > 0, report
    assert ("POST", "/cdn/live/main/viewer-id") in seen
    assert ("POST", "/cdn/live/main/heartbeat") in seen
    assert ("GET", "/cdn/live/main/media.m3u8") in seen
    assert counts[-1] == 1, counts  # counted at the origin behind the front, once
