"""Redis outages: bounded failure, self-healing reconnection, safe error messages.

This module owns what the contract suite cannot show: what :class:`RedisStore` does when
the server goes away and comes back. Each test gets its own ``redis-server`` (they kill
it), started on a free port; the machine's own Redis on 6379 is never touched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from server.store import StoreUnavailable
from server.store.redis import RedisStore, redact_url
from tests.support.redis_server import RedisServer, free_port

# Works with or without asyncio_mode = "auto". The mark makes pytest-asyncio warn about
# (and filterwarnings=error fail) any sync test, so even the pure ones below are async.
pytestmark = pytest.mark.asyncio

# Tight limits keep the suite fast and make "gives up in bounded time" checkable: three
# attempts, waits of 0.02 + 0.04 s, one second per socket operation.
FAST: dict[str, Any] = {"retries": 2, "backoff_base": 0.01, "backoff_cap": 0.05, "socket_timeout": 1.0}

#: A failing call must be reported well before this (seconds).
BOUND = 5.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    # Per test, not the shared one from conftest: these tests kill their server.
    with RedisServer(tmp_path) as server:
        yield server


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "auth", password="right") as server:
        yield server


@pytest_asyncio.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(redis_server.url, namespace="reconnect", **FAST)
    yield store
    await store.close()


async def unavailable_within_bound(call: Awaitable[object]) -> StoreUnavailable:
    """Await ``call``, expecting StoreUnavailable in under BOUND seconds."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        # wait_for turns a hang into a test failure instead of a stuck suite.
        await asyncio.wait_for(call, timeout=2 * BOUND)
    assert time.monotonic() - started < BOUND
    return caught.value


async def test_down_then_restarted_server_is_used_again(redis_server: RedisServer, store: RedisStore) -> None:
    await store.set("k", {"v": 1})
    assert await store.get("k") == {"v": 1}

    await asyncio.to_thread(redis_server.stop)  # stop/start block; keep them off the loop
    error = await unavailable_within_bound(store.ping())
    assert error.code == "store.unavailable"
    assert f"127.0.0.1:{redis_server.port}" in error.message
    await unavailable_within_bound(store.get("k"))
    await unavailable_within_bound(store.append("l", 1))

    await asyncio.to_thread(redis_server.restart)
    # Same object, not rebuilt; the data is gone because the server keeps no files.
    await store.ping()
    assert await store.get("k") is None
    await store.set("k", "again")
    assert await store.get("k") == "again"
    assert await store.incr("c", "f") == 1


async def test_restart_between_calls_is_invisible(redis_server: RedisServer, store: RedisStore) -> None:
    # The pooled connection is dead after the restart; the retry re-dials transparently.
    await store.set("k", 1)
    await asyncio.to_thread(redis_server.restart)
    assert await store.get("k") is None
    await store.set("k", 2)
    assert await store.get("k") == 2


async def test_outage_shorter_than_the_retries_is_bridged(redis_server: RedisServer) -> None:
    # Enough patience (about 0.05 + 0.1 + 0.2 * 8 s) to outlast a restart that takes ~0.3 s.
    store = RedisStore.from_url(
        redis_server.url, namespace="bridge", retries=10, backoff_base=0.025, backoff_cap=0.2
    )
    try:
        await store.set("k", 1)
        await asyncio.to_thread(redis_server.stop)

        async def come_back() -> None:
            await asyncio.sleep(0.3)
            await asyncio.to_thread(redis_server.start)  # start() blocks until PING answers

        returning = asyncio.create_task(come_back())
        await asyncio.wait_for(store.ping(), timeout=2 * BOUND)  # succeeds, no exception
        await returning
        await store.set("k", 2)
        assert await store.get("k") == 2
    finally:
        await store.close()


async def test_unreachable_url_names_host_port_but_not_password() -> None:
    port = free_port()  # nothing listens there
    store = RedisStore.from_url(f"redis://:secret@127.0.0.1:{port}/0", namespace="n", **FAST)
    try:
        error = await unavailable_within_bound(store.ping())
        assert f"127.0.0.1:{port}" in error.message
        assert "secret" not in error.message
        assert "secret" not in str(error)
        assert "ConnectionError" in error.message  # the cause is named
        assert "secret" not in repr(store)
    finally:
        await store.close()


async def test_wrong_password_is_unavailable_without_leaking(password_server: RedisServer) -> None:
    url = f"redis://:wrong-secret@127.0.0.1:{password_server.port}/0"
    store = RedisStore.from_url(url, namespace="n", **FAST)
    try:
        error = await unavailable_within_bound(store.ping())
        assert "wrong-secret" not in error.message
        assert f"127.0.0.1:{password_server.port}" in error.message
    finally:
        await store.close()
    good = RedisStore.from_url(password_server.url, namespace="n", **FAST)
    try:
        await good.ping()
    finally:
        await good.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://:secret@127.0.0.1:6380/0",
        "redis://:secret@127.0.0.1:notaport/0",
        "redis://:secret@127.0.0.1:99999/0",
        "redis://:secret@127.0.0.1:6380/notadb",
        "127.0.0.1:6380",
        "redis://:se/cret@127.0.0.1:6380/0x",
    ],
)
async def test_invalid_url_is_refused_at_construction(url: str) -> None:
    with pytest.raises(StoreUnavailable, match="invalid Redis URL") as caught:
        RedisStore.from_url(url, namespace="n")
    assert "secret" not in caught.value.message


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("redis://127.0.0.1:6380/0", "redis://127.0.0.1:6380/0"),
        ("redis://:secret@h:1/2", "redis://:***@h:1/2"),
        ("rediss://user:secret@h:1/0?ssl_cert_reqs=none", "rediss://user:***@h:1/0"),
        ("redis://user@h/0", "redis://user@h/0"),
        ("redis://:se@c/ret@h:1/0", "redis://:***@h:1/0"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
        ("garbage:secret@h", "<redacted>"),
    ],
)
async def test_redact_url(url: str, safe: str) -> None:
    assert redact_url(url) == safe
