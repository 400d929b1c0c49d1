"""Requests that wait for the same thing meet: one piece of work per key, every request its
result, a request that goes away breaks nobody else's."""

from __future__ import annotations

import asyncio

import pytest

from server.live.rendezvous import Rendezvous


async def test_one_work_per_key_and_every_request_gets_its_result() -> None:
    meet: Rendezvous[str, int] = Rendezvous("test")
    started: list[str] = []
    gate = asyncio.Event()

    async def work(key: str) -> int:
        started.append(key)
        await gate.wait()
        return len(started)

    futures = [meet.join("a", lambda: work("a")) for _ in range(100)]
    futures += [meet.join("b", lambda: work("b")) for _ in range(3)]
    await asyncio.sleep(0)
    assert sorted(started) == ["a", "b"] and "a" in meet and len(meet) == 2
    gate.set()
    results = await asyncio.gather(*futures)
    assert len(set(results[:100])) == 1 and len(set(results[100:])) == 1
    assert len(meet) == 0
    # Once a meeting is over, the same key starts a new one.
    assert await meet.join("a", lambda: work("a")) == 3


async def test_a_first_request_that_goes_away_cancels_nobody_else() -> None:
    meet: Rendezvous[int, str] = Rendezvous("test")
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "done"

    async def request() -> str:
        return await meet.join(1, work)

    first = asyncio.create_task(request())
    await asyncio.sleep(0)
    others = [asyncio.create_task(request()) for _ in range(5)]
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert first.cancelled() and 1 in meet
    gate.set()
    assert await asyncio.gather(*others) == ["done"] * 5


async def test_a_failure_reaches_every_request_and_a_cancelled_work_cancels_them() -> None:
    meet: Rendezvous[int, str] = Rendezvous("test")

    async def broken() -> str:
        await asyncio.sleep(0)
        raise ValueError("no")

    futures = [meet.join(1, broken) for _ in range(3)]
    for future in futures:
        with pytest.raises(ValueError, match="no"):
            await future
    assert len(meet) == 0

    async def forever() -> str:
        await asyncio.Event().wait()
        return ""

    waiting = [meet.join(2, forever) for _ in range(2)]
    await asyncio.sleep(0)
    for task in asyncio.all_tasks():
        if task.get_name().startswith("test 2"):
            task.cancel()
    await meet.wait_closed()
    assert all(f.cancelled() for f in waiting) and len(meet) == 0
