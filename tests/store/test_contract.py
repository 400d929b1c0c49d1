"""The Store contract: one suite, run against the memory store and a real Redis.

This module owns the behaviour every :class:`server.store.base.Store` must share, so the
service behaves the same with or without ``--redis-url``. Each test gets a fresh
namespace; the Redis variant runs against a private ``redis-server`` started for this
module (never the machine's own Redis on 6379).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from server.store import Store, StoreUnavailable, open_store
from server.store.base import Hits
from server.store.memory import SWEEP_EVERY, MemoryBackend, MemoryStore
from server.store.redis import RedisStore
from tests.support.redis_server import RedisServer

# Works whether or not the project runs pytest-asyncio in "auto" mode.
pytestmark = pytest.mark.asyncio

#: Opens a store on the test's backend under the given namespace.
OpenStore = Callable[[str], Store]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    # One server per module is enough: tests are isolated by namespace, not by server.
    with RedisServer(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest_asyncio.fixture(params=["memory", "redis"])
async def open_named(request: pytest.FixtureRequest) -> AsyncIterator[OpenStore]:
    """A factory for stores sharing one backend (one MemoryBackend, or one Redis)."""
    opened: list[Store] = []
    if request.param == "memory":
        backend = MemoryBackend()

        def make(namespace: str) -> Store:
            return MemoryStore(namespace, backend=backend)

    else:
        # Looked up lazily so the memory half of the suite never starts a redis-server.
        server: RedisServer = request.getfixturevalue("redis_server")

        def make(namespace: str) -> Store:
            return RedisStore.from_url(server.url, namespace=namespace)

    def open_and_track(namespace: str) -> Store:
        store = make(namespace)
        opened.append(store)
        return store

    yield open_and_track
    for store in opened:
        await store.close()


@pytest_asyncio.fixture
async def store(open_named: OpenStore) -> Store:
    return open_named(f"test-{uuid.uuid4().hex}")


NESTED: dict[str, Any] = {
    "stage": "Hall Ä — 大ホール",
    "emoji": "🎤",
    "delays": [0, 5, -3],
    "nested": {"ok": True, "none": None, "ratio": 0.25, "list": [{"a": []}, {}]},
}


async def test_ping(store: Store) -> None:
    await store.ping()
    assert store.kind in {"memory", "redis"}


async def test_get_absent_is_none(store: Store) -> None:
    assert await store.get("nope") is None


async def test_set_get_round_trip(store: Store) -> None:
    await store.set("doc", NESTED)
    assert await store.get("doc") == NESTED


@pytest.mark.parametrize("value", ["", "text", 0, -7, 1.5, True, False, [], {}, [1, "two", None]])
async def test_scalars_and_empties_round_trip(store: Store, value: Any) -> None:
    await store.set("v", value)
    got = await store.get("v")
    assert got == value
    assert type(got) is type(value)


async def test_stored_none_reads_as_absent(store: Store) -> None:
    # JSON null is storable, but get() cannot tell it from a missing key.
    await store.set("n", None)
    assert await store.get("n") is None


async def test_overwrite(store: Store) -> None:
    await store.set("k", {"v": 1})
    await store.set("k", [2])
    assert await store.get("k") == [2]


async def test_delete_value_list_counters_and_set(store: Store) -> None:
    await store.set("value", 1)
    await store.append("list", "a")
    await store.incr("group", "f")
    await store.add("set", "m")
    for key in ("value", "list", "group", "set"):
        await store.delete(key)
    assert await store.get("value") is None
    assert await store.items("list") == []
    assert await store.counters("group") == {}
    assert await store.cardinality("set") == 0
    # A deleted set starts afresh: its old members are new again.
    assert await store.add("set", "m") is True


async def test_delete_absent_is_fine(store: Store) -> None:
    await store.delete("never-there")


async def test_append_returns_lengths_and_items_keep_order(store: Store) -> None:
    lengths = [await store.append("delays:main", item) for item in ({"m": 5}, "x", [1, 2])]
    assert lengths == [1, 2, 3]
    assert await store.items("delays:main") == [{"m": 5}, "x", [1, 2]]


async def test_items_absent_is_empty(store: Store) -> None:
    assert await store.items("nope") == []


async def test_incr_running_values_and_negative(store: Store) -> None:
    assert await store.incr("c", "views") == 1
    assert await store.incr("c", "views") == 2
    assert await store.incr("c", "views", 5) == 7
    assert await store.incr("c", "views", by=-10) == -3
    assert await store.incr("c", "likes", -1) == -1
    assert await store.counters("c") == {"views": -3, "likes": -1}


async def test_counters_absent_is_empty(store: Store) -> None:
    assert await store.counters("nope") == {}


@pytest.mark.parametrize("by", [1.5, "2", True])
async def test_incr_refuses_non_int(store: Store, by: Any) -> None:
    with pytest.raises(TypeError):
        await store.incr("c", "f", by)
    assert await store.counters("c") == {}


async def test_add_tells_new_members_and_cardinality_counts_them(store: Store) -> None:
    added = [await store.add("visitors", m) for m in ("ann", "bob", "ann", "cy", "bob", "ann", "")]
    assert added == [True, True, False, True, False, False, True]
    assert await store.cardinality("visitors") == 4
    # Members are exact strings: no case folding, no trimming.
    assert await store.add("visitors", "Ann") is True
    assert await store.add("visitors", "ann ") is True
    assert await store.cardinality("visitors") == 6


async def test_cardinality_absent_is_zero(store: Store) -> None:
    assert await store.cardinality("nope") == 0


@pytest.mark.parametrize("member", [1, None, b"m", ["m"]], ids=["int", "none", "bytes", "list"])
async def test_add_refuses_non_str_members(store: Store, member: Any) -> None:
    with pytest.raises(TypeError):
        await store.add("s", member)
    assert await store.cardinality("s") == 0


async def test_concurrent_adds_of_one_member_have_one_winner(open_named: OpenStore) -> None:
    # Two instances racing to claim the same thing: exactly one add() says it was new.
    namespace = f"claim-{uuid.uuid4().hex}"
    stores = [open_named(namespace) for _ in range(4)]
    results = await asyncio.gather(*(s.add("decided", "request-1") for s in stores for _ in range(5)))
    assert sorted(results) == [False] * 19 + [True]
    assert await stores[0].cardinality("decided") == 1


async def test_namespaces_isolate(open_named: OpenStore) -> None:
    suffix = uuid.uuid4().hex
    a, b = open_named(f"a-{suffix}"), open_named(f"b-{suffix}")
    await a.set("k", "from a")
    await a.append("l", 1)
    await a.incr("c", "f")
    await a.add("s", "m")
    assert await b.get("k") is None
    assert await b.items("l") == []
    assert await b.counters("c") == {}
    assert await b.cardinality("s") == 0
    assert await b.add("s", "m") is True
    await b.set("k", "from b")
    await b.delete("l")
    assert await a.get("k") == "from a"
    assert await a.items("l") == [1]


async def test_same_namespace_shares(open_named: OpenStore) -> None:
    # Two instances of the service with the same namespace must see one state.
    namespace = f"shared-{uuid.uuid4().hex}"
    a, b = open_named(namespace), open_named(namespace)
    await a.set("k", {"v": 1})
    assert await b.get("k") == {"v": 1}


async def test_mutating_values_does_not_change_the_store(store: Store) -> None:
    original: dict[str, Any] = {"list": [1, 2], "inner": {"x": 1}}
    await store.set("k", original)
    original["list"].append(3)  # the caller's object after set()

    first = await store.get("k")
    assert first is not None
    first["inner"]["x"] = 99  # an object returned by get()
    assert await store.get("k") == {"list": [1, 2], "inner": {"x": 1}}

    item = {"a": [1]}
    await store.append("l", item)
    item["a"].append(2)
    listed = await store.items("l")
    listed[0]["a"].append(3)
    listed.append("extra")
    assert await store.items("l") == [{"a": [1]}]

    await store.incr("c", "f")
    counters = await store.counters("c")
    counters["f"] = 100
    assert await store.counters("c") == {"f": 1}


@pytest.mark.parametrize("value", [{1, 2}, object(), {"k": b"bytes"}], ids=["set", "object", "bytes"])
async def test_non_json_value_raises_type_error(store: Store, value: Any) -> None:
    await store.set("k", "kept")
    with pytest.raises(TypeError):
        await store.set("k", value)
    with pytest.raises(TypeError):
        await store.append("l", value)
    # A refused write changes nothing.
    assert await store.get("k") == "kept"
    assert await store.items("l") == []


@pytest.mark.parametrize("value", [math.nan, math.inf, [-math.inf]])
async def test_non_finite_float_raises_value_error(store: Store, value: Any) -> None:
    with pytest.raises(ValueError, match="JSON"):
        await store.set("k", value)


async def test_wrong_kind_raises_type_error(store: Store) -> None:
    await store.append("list", 1)
    await store.set("value", 1)
    await store.add("set", "m")
    await store.incr("group", "f")
    with pytest.raises(TypeError):
        await store.add("list", "m")
    with pytest.raises(TypeError):
        await store.add("group", "m")
    with pytest.raises(TypeError):
        await store.cardinality("value")
    for reader in (store.get, store.items, store.counters):
        with pytest.raises(TypeError):
            await reader("set")
    with pytest.raises(TypeError):
        await store.append("set", "x")
    with pytest.raises(TypeError):
        await store.incr("set", "f")
    with pytest.raises(TypeError):
        await store.get("list")
    with pytest.raises(TypeError):
        await store.counters("list")
    with pytest.raises(TypeError):
        await store.append("value", 2)
    with pytest.raises(TypeError):
        await store.incr("value", "f")
    with pytest.raises(TypeError):
        await store.items("value")
    # set() replaces whatever kind of data was there.
    await store.set("list", "now a value")
    assert await store.get("list") == "now a value"


async def test_open_store_picks_memory_without_url() -> None:
    for url in (None, ""):
        store = open_store(url, namespace="n")
        assert store.kind == "memory"
        await store.close()


async def test_open_store_picks_redis_with_url(redis_server: RedisServer) -> None:
    store = open_store(redis_server.url, namespace=f"n-{uuid.uuid4().hex}")
    try:
        assert store.kind == "redis"
        await store.set("k", [1])
        assert await store.get("k") == [1]
    finally:
        await store.close()


async def test_open_store_refuses_bad_url() -> None:
    with pytest.raises(StoreUnavailable, match="invalid Redis URL"):
        open_store("http://localhost:6379", namespace="n")


async def test_empty_namespace_is_refused() -> None:
    with pytest.raises(ValueError, match="namespace"):
        MemoryStore("")
    with pytest.raises(ValueError, match="namespace"):
        RedisStore.from_url("redis://127.0.0.1:1/0", namespace="")


# -- rate-limit windows ---------------------------------------------------------------------

T0 = 1_607_218_200.25  # an instant on the callers' clock (seconds since the epoch)


async def test_hits_count_within_a_window_and_a_new_window_opens_after_it(store: Store) -> None:
    got = [await store.hit("fails:1.2.3.4", window=60.0, now=T0 + dt) for dt in (0, 1.5, 59.9)]
    assert got == [Hits(1, T0 + 60), Hits(2, T0 + 60), Hits(3, T0 + 60)]
    assert await store.hits("fails:1.2.3.4", now=T0 + 30) == Hits(3, T0 + 60)
    # At the window's end it is over: reading shows nothing open, the next hit opens a new one.
    assert await store.hits("fails:1.2.3.4", now=T0 + 60) == Hits(0, T0 + 60)
    assert await store.hit("fails:1.2.3.4", window=10.0, now=T0 + 75) == Hits(1, T0 + 85)


async def test_hits_of_an_absent_key_are_none(store: Store) -> None:
    assert await store.hits("never", now=T0) == Hits(0, T0)


async def test_hit_windows_are_per_key(store: Store) -> None:
    await store.hit("a", window=5.0, now=T0)
    await store.hit("a", window=5.0, now=T0)
    assert await store.hit("b", window=5.0, now=T0 + 1) == Hits(1, T0 + 6)
    assert (await store.hits("a", now=T0 + 1)).count == 2


async def test_concurrent_hits_are_each_counted(open_named: OpenStore) -> None:
    # Instances counting one client's attempts: every hit gets its own count, none is lost.
    namespace = f"hits-{uuid.uuid4().hex}"
    stores = [open_named(namespace) for _ in range(4)]
    counts = await asyncio.gather(*(s.hit("ip", window=60.0, now=T0) for s in stores for _ in range(5)))
    assert sorted(c.count for c in counts) == list(range(1, 21))
    assert await stores[0].hits("ip", now=T0 + 1) == Hits(20, T0 + 60)


async def test_delete_forgets_a_window(store: Store) -> None:
    await store.hit("w", window=60.0, now=T0)
    await store.delete("w")
    assert await store.hit("w", window=60.0, now=T0 + 1) == Hits(1, T0 + 61)


@pytest.mark.parametrize("window", [0.0, -1.0])
async def test_hit_refuses_a_window_that_is_not_positive(store: Store, window: float) -> None:
    with pytest.raises(ValueError, match="window"):
        await store.hit("w", window=window, now=T0)
    assert await store.hits("w", now=T0) == Hits(0, T0)


async def test_hit_on_another_kind_raises_type_error(store: Store) -> None:
    await store.set("value", 1)
    await store.add("set", "m")
    for key in ("value", "set"):
        with pytest.raises(TypeError):
            await store.hit(key, window=1.0, now=T0)
        with pytest.raises(TypeError):
            await store.hits(key, now=T0)
    await store.hit("window", window=60.0, now=T0)
    for reader in (store.get, store.items, store.cardinality):
        with pytest.raises(TypeError):
            await reader("window")
    assert await store.hits("window", now=T0) == Hits(1, T0 + 60)


async def test_memory_windows_that_ended_are_swept() -> None:
    backend = MemoryBackend()
    store = MemoryStore("sweep", backend=backend)
    for n in range(SWEEP_EVERY - 1):
        await store.hit(f"ip-{n}", window=1.0, now=T0)
    assert len(backend.data) == SWEEP_EVERY - 1
    # The sweep runs on a later hit, once those windows have ended: only the new one stays.
    await store.hit("late", window=1.0, now=T0 + 2)
    assert list(backend.data) == ["forumcast:sweep:late"]
