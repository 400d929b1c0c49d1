"""One token secret for every instance on a Redis (server/shared_secret.py), on a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from server.auth import Tokens
from server.shared_secret import SECRET_KEY, shared_secret
from server.store import StoreUnavailable, key_prefix
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.asyncio


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as server:
        yield server


async def test_every_instance_gets_the_secret_the_first_one_made(redis_server: RedisServer) -> None:
    first = await shared_secret(redis_server.url, "gdcs2020")
    again = await shared_secret(redis_server.url, "gdcs2020")
    assert first == again
    assert len(first.encode()) >= 32
    # A token one instance prints is valid on another.
    token = Tokens(first).issue("producer", ttl=timedelta(hours=1))
    assert Tokens(again).verify(token).role == "producer"
    # Another event on the same Redis has its own.
    assert await shared_secret(redis_server.url, "other-event") != first


async def test_a_broken_value_or_no_redis_is_reported(redis_server: RedisServer) -> None:
    with redis.Redis(port=redis_server.port) as raw:
        raw.set(key_prefix("broken") + SECRET_KEY, '"short"')
    with pytest.raises(StoreUnavailable, match="not a valid secret"):
        await shared_secret(redis_server.url, "broken")
    with pytest.raises(StoreUnavailable, match="cannot read the shared secret"):
        await shared_secret(f"redis://:pw@127.0.0.1:{free_port()}/0", "gdcs2020")
