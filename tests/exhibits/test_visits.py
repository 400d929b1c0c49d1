"""Visits: the body check, and exact counts in the memory store and a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from exhibits.visits import VISITOR_RULE, Visit, VisitKind, Visits, VisitStats, is_visitor_id, parse_visit
from server.errors import ForumcastError
from server.store.base import Store
from server.store.memory import MemoryBackend, MemoryStore
from server.store.redis import RedisStore
from tests.support.redis_server import RedisServer

#: Opens one more store on the test's backend under the test's namespace (another instance).
OpenStore = Callable[[], Store]

ANN, BOB, CY = "visitor-ann-0001", "visitor-bob-0002", "visitor-cy-00003"


@pytest_asyncio.fixture(params=["memory", "redis"])
async def open_store(request: pytest.FixtureRequest) -> AsyncIterator[OpenStore]:
    namespace = f"visits-{uuid.uuid4().hex}"
    opened: list[Store] = []
    backend = MemoryBackend()

    def make() -> Store:
        if request.param == "memory":
            store: Store = MemoryStore(namespace, backend=backend)
        else:
            server: RedisServer = request.getfixturevalue("redis_server")
            store = RedisStore.from_url(server.url, namespace=namespace)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
def visits(open_store: OpenStore) -> Visits:
    return Visits(open_store())


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("abcdefgh", True),
        ("A" * 64, True),
        ("0b7e-41_Zz", True),
        ("abcdefg", False),
        ("A" * 65, False),
        ("abc defgh", False),
        ("abcdefgh\n", False),
        ("ünïcödé-id", False),
        (12345678, False),
        (None, False),
    ],
)
async def test_visitor_ids(value: Any, ok: bool) -> None:
    assert is_visitor_id(value) is ok


async def test_parse_visit_accepts_both_kinds() -> None:
    assert parse_visit({"visitor": ANN, "kind": "detail"}) == Visit(ANN, VisitKind.DETAIL)
    assert parse_visit({"visitor": BOB, "kind": "model"}) == Visit(BOB, VisitKind.MODEL)


@pytest.mark.parametrize(
    ("payload", "details"),
    [
        ({}, [("visitor", "is required"), ("kind", "is required: one of detail, model")]),
        (
            {"visitor": "short", "kind": "hover", "extra": 1},
            [("visitor", VISITOR_RULE), ("kind", "must be one of detail, model"), ("extra", "unknown field")],
        ),
        ({"visitor": ANN, "kind": "DETAIL"}, [("kind", "must be one of detail, model")]),
        ({"visitor": 123456789, "kind": "model"}, [("visitor", VISITOR_RULE)]),
        (["visitor", "kind"], [("", "must be a JSON object")]),
        ("detail", [("", "must be a JSON object")]),
    ],
)
async def test_parse_visit_lists_every_problem(payload: Any, details: list[tuple[str, str]]) -> None:
    with pytest.raises(ForumcastError) as caught:
        parse_visit(payload)
    assert caught.value.code == "visit.invalid"
    assert caught.value.details == [{"field": f, "reason": r} for f, r in details]


async def test_seven_views_by_three_visitors(visits: Visits) -> None:
    firsts = [
        await visits.record("cn-hydrogen-01", Visit(who, VisitKind.DETAIL))
        for who in (ANN, BOB, ANN, CY, ANN, BOB, CY)
    ]
    assert firsts == [True, True, False, True, False, False, False]
    assert await visits.stats("cn-hydrogen-01") == VisitStats("cn-hydrogen-01", 7, 3, 0, 0)


async def test_kinds_and_exhibits_are_counted_apart(visits: Visits) -> None:
    await visits.record("de-solar-01", Visit(ANN, VisitKind.DETAIL))
    # A visitor's first model load is new even after a detail view, and the other way round.
    assert await visits.record("de-solar-01", Visit(ANN, VisitKind.MODEL)) is True
    assert await visits.record("de-solar-01", Visit(ANN, VisitKind.MODEL)) is False
    assert await visits.record("de-solar-01", Visit(BOB, VisitKind.MODEL)) is True
    # The same visitor at another exhibit is new there.
    assert await visits.record("dk-wind-01", Visit(ANN, VisitKind.MODEL)) is True
    assert (await visits.stats("de-solar-01")).to_json() == {
        "exhibit": "de-solar-01",
        "detail_views": 1,
        "detail_visitors": 1,
        "model_loads": 3,
        "model_visitors": 2,
    }
    assert await visits.stats("dk-wind-01") == VisitStats("dk-wind-01", 0, 0, 1, 1)


async def test_an_exhibit_never_visited_has_zeros(visits: Visits) -> None:
    assert await visits.stats("il-water-01") == VisitStats("il-water-01", 0, 0, 0, 0)


async def test_instances_sharing_a_store_count_one_visitor_once(open_store: OpenStore) -> None:
    # Four instances (four connections in the Redis case) record concurrently.
    instances = [Visits(open_store()) for _ in range(4)]
    events = [
        instances[n % 4].record("fr-storage-01", Visit(f"visitor-{n % 10:04d}", VisitKind.MODEL))
        for n in range(40)
    ]
    firsts = await asyncio.gather(*events)
    assert firsts.count(True) == 10
    for instance in instances:
        assert await instance.stats("fr-storage-01") == VisitStats("fr-storage-01", 0, 0, 40, 10)
