"""Rotating one input's stream key while the service runs: the new key works at once, the old
one no longer admits a publisher, a publisher already connected stays; on either store."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import redis

from server.clock import ManualClock
from tests.conftest import TOKENS, Serve, at, auth
from tests.live.streams import LoopPublisher, clip
from tests.support.redis_server import RedisServer

MORNING = "2020-12-06T09:30:00+08:00"


def path(key: str, takeover: bool = False) -> str:
    return f"/ws/publish/main-cam?key={key}" + ("&takeover=1" if takeover else "")


async def listed_key(client: Any, headers: dict[str, str]) -> str:
    inputs = (await (await client.get("/api/v1/inputs", headers=headers)).json())["inputs"]
    return str({i["id"]: i["stream_key"] for i in inputs}["main-cam"])


async def test_rotate_a_key_with_a_publisher_on(serve: Serve, store_settings: dict[str, Any]) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0), **store_settings)
    producer = auth("producer", "main")
    old = await listed_key(client, producer)
    publisher = LoopPublisher(f"ws://127.0.0.1:{client.port}{path(old)}", clip("CAM", 320, 180, 12, "aac"))
    await publisher.start()
    try:
        rotated = await client.post("/api/v1/inputs/main-cam/key/rotate", headers=producer)
        assert rotated.status == 200 and rotated.headers["Cache-Control"] == "no-store"
        new = (await rotated.json())["stream_key"]
        assert new != old and len(new) == 32
        assert await listed_key(client, producer) == new
        # The old key admits no new publisher (the same refusal as any bad key) ...
        refused = await client.get("/ws/publish/main-cam", params={"key": old, "takeover": "1"})
        assert refused.status == 401 and (await refused.json())["error"]["code"] == "live.bad_key"
        # ... the publisher already connected stays, and the new key is in force.
        await asyncio.sleep(0.5)
        inputs = (await (await client.get("/api/v1/inputs", headers=producer)).json())["inputs"]
        cam = {i["id"]: i for i in inputs}["main-cam"]
        assert cam["publisher"] is not None and cam["up"] is True
        busy = await client.get("/ws/publish/main-cam", params={"key": new})
        assert busy.status == 409  # the right key, but the input has a publisher
        ws = await client.ws_connect(path(new, takeover=True))
        await ws.close()
    finally:
        await publisher.kill()
    # Ops may rotate too; another stage's producer may not.
    assert (await client.post("/api/v1/inputs/main-cam/key/rotate", headers=auth("ops"))).status == 200
    other = await client.post("/api/v1/inputs/main-cam/key/rotate", headers=auth("producer", "europe"))
    assert other.status == 403 and (await other.json())["error"]["code"] == "auth.forbidden"
    unknown = await client.post("/api/v1/inputs/nowhere/key/rotate", headers=auth("ops"))
    assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "live.unknown_input"


async def test_a_rotated_key_reaches_another_instance(serve: Serve, redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    first = await serve(redis_url=redis_server.url)
    second = await serve(redis_url=redis_server.url)
    producer = auth("producer", "main")
    new = (await (await first.post("/api/v1/inputs/main-cam/key/rotate", headers=producer)).json())[
        "stream_key"
    ]
    for _ in range(30):
        if await listed_key(second, producer) == new:
            break
        await asyncio.sleep(0.1)
    assert await listed_key(second, producer) == new
    ws = await second.ws_connect(path(new))
    await ws.close()
    # A fresh instance reads it at start.
    third = await serve(redis_url=redis_server.url)
    assert await listed_key(third, producer) == new
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await third.ws_connect(path(TOKENS.stream_key("main-cam")))  # the derived key, replaced
    assert refused.value.status == 401
