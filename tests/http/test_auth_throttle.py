"""Credential guessing throttled, over real HTTP on the memory store and a real Redis.

Ten wrong stream keys (or tokens) from one address in a minute block that address for the
minute: every attempt, the right credential included, gets 429 ``auth.too_many_attempts``
with ``Retry-After``; another address (127.0.0.2 on the loopback) is not affected; the
block ends with its window and doubles when the failures go on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server.clock import ManualClock
from server.http.keys import STREAM_KEYS
from server.limiter import IP_LIMIT, AuthThrottle, Scope
from server.store.memory import MemoryStore
from tests.conftest import Serve, at, auth

NOW = at("2020-12-06T09:30:00+08:00")
Client = TestClient[Any, Any]


@pytest.fixture
async def other_address() -> AsyncIterator[aiohttp.ClientSession]:
    """A client whose requests come from 127.0.0.2 (the server listens on 127.0.0.1)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as session:
        yield session


async def metric(client: Client, name: str, kind: str) -> float:
    text = await (await client.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == {"kind": kind}:
                return sample.value
    return 0.0


async def refused(response: aiohttp.ClientResponse) -> tuple[int, str, str | None]:
    body = await response.json()
    return response.status, body["error"]["code"], response.headers.get("Retry-After")


async def test_wrong_stream_keys_block_the_address_not_others(
    serve: Serve, store_settings: dict[str, Any], other_address: aiohttp.ClientSession
) -> None:
    clock = ManualClock(NOW)
    client = await serve(clock=clock, **store_settings)
    right = client.app[STREAM_KEYS].key("main-cam")

    async def ingest(key: str) -> aiohttp.ClientResponse:
        return await client.post("/ingest/main-cam", params={"key": key}, data=b"")

    for n in range(IP_LIMIT):
        assert await refused(await ingest(f"guess-{n:04d}-abcdefgh")) == (401, "live.bad_key", None)
        clock.advance(timedelta(seconds=1))
    # The 11th attempt and then the right key: turned away for a minute from the 10th failure.
    assert await refused(await ingest("guess-eleven-abcdefgh")) == (429, "auth.too_many_attempts", "59")
    assert await refused(await ingest(right)) == (429, "auth.too_many_attempts", "59")
    # The WebSocket route is the same check, before any upgrade.
    ws = await client.get("/ws/publish/main-cam", params={"key": right})
    assert await refused(ws) == (429, "auth.too_many_attempts", "59")
    # Another address publishes with the right key.
    async with other_address.post(
        client.make_url("/ingest/main-cam"), params={"key": right}, data=b""
    ) as other:
        assert other.status == 200, await other.text()
    assert await metric(client, "forumcast_auth_failures_total", "stream_key") == IP_LIMIT
    assert await metric(client, "forumcast_auth_throttled_total", "stream_key") == 3
    # After the window the right key works, and failures start from nothing.
    clock.advance(timedelta(seconds=59))
    assert (await ingest(right)).status == 200
    # Failing on after a block blocks again, twice as long.
    for n in range(IP_LIMIT):
        assert (await ingest(f"again-{n:04d}-abcdefgh")).status == 401
    assert await refused(await ingest(right)) == (429, "auth.too_many_attempts", "120")


async def test_wrong_tokens_block_the_address_not_others(
    serve: Serve, store_settings: dict[str, Any], other_address: aiohttp.ClientSession
) -> None:
    clock = ManualClock(NOW)
    client = await serve(clock=clock, **store_settings)
    producer = auth("producer")
    for n in range(IP_LIMIT):
        guess = await client.get("/api/v1/inputs", headers={"Authorization": f"Bearer forged.{n}.token"})
        assert await refused(guess) == (401, "auth.invalid_token", None)
    blocked = [
        await client.get("/api/v1/inputs", headers={"Authorization": "Bearer forged.11.token"}),
        await client.get("/api/v1/inputs", headers=producer),
        await client.get("/api/v1/stages/main", params={"token": producer["Authorization"][7:]}),
    ]
    for response in blocked:
        assert await refused(response) == (429, "auth.too_many_attempts", "60")
    # Requests without a token are not affected, nor is another address.
    assert (await client.get("/api/v1/stages")).status == 200
    async with other_address.get(client.make_url("/api/v1/inputs"), headers=producer) as other:
        assert other.status == 200
    assert await metric(client, "forumcast_auth_failures_total", "token") == IP_LIMIT
    assert await metric(client, "forumcast_auth_throttled_total", "token") == 3
    clock.advance(timedelta(seconds=60))
    assert (await client.get("/api/v1/inputs", headers=producer)).status == 200


async def test_expired_and_missing_tokens_are_not_guesses(serve: Serve) -> None:
    client = await serve(clock=ManualClock(NOW))
    expired = auth("producer", ttl=timedelta(seconds=-10))
    for _ in range(IP_LIMIT + 2):
        assert (await client.get("/api/v1/inputs", headers=expired)).status == 401
        assert (await client.get("/api/v1/inputs")).status == 401
    assert (await client.get("/api/v1/inputs", headers=auth("producer"))).status == 200
    assert await metric(client, "forumcast_auth_failures_total", "token") == 0


async def test_throttle_blocks_double_up_to_the_cap() -> None:
    clock = ManualClock(NOW)
    throttle = AuthThrottle(MemoryStore("t"), clock, window=60.0, max_block=200.0)
    scope = [Scope("ip:203.0.113.7", 3)]
    waits = []
    for _ in range(4):
        for _ in range(3):
            await throttle.check("token", scope)
            await throttle.failed("token", scope)
        with pytest.raises(Exception) as caught:
            await throttle.check("token", scope)
        waits.append(caught.value.retry_after)  # type: ignore[attr-defined]
        clock.advance(timedelta(seconds=caught.value.retry_after))  # type: ignore[attr-defined]
    assert waits == [60, 120, 200, 200]
    # A day without failures forgets the strikes.
    clock.advance(timedelta(days=1))
    for _ in range(3):
        await throttle.failed("token", scope)
    with pytest.raises(Exception, match="try again in 60 s"):
        await throttle.check("token", scope)


@pytest.mark.parametrize("settings", [{"window": 0}, {"window": 60, "max_block": 30}, {"strike_window": 10}])
async def test_throttle_refuses_useless_settings(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="window"):
        AuthThrottle(MemoryStore("t"), ManualClock(NOW), **settings)
