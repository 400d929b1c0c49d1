"""FairSlots: a free slot goes to the owner with the fewest running, served longest ago."""

from __future__ import annotations

import asyncio

import pytest

from exhibits.fair import FairSlots


async def test_turns_go_round_robin_across_owners() -> None:
    slots = FairSlots(slots=1)
    started: list[str] = []
    release = asyncio.Event()

    async def work(owner: str, name: str) -> None:
        async with slots.slot(owner):
            started.append(name)
            await release.wait()

    first = asyncio.create_task(work("a", "a1"))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(work(o, n)) for o, n in (("a", "a2"), ("a", "a3"), ("b", "b1"), ("c", "c1"))]
    await asyncio.sleep(0)
    assert started == ["a1"] and slots.waiting == 4 and slots.busy == 1
    release.set()
    await asyncio.gather(first, *rest)
    assert started == ["a1", "b1", "c1", "a2", "a3"]
    assert slots.busy == 0 and slots.waiting == 0


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    slots = FairSlots(slots=1)
    gate = asyncio.Event()

    async def hold() -> None:
        async with slots.slot("a"):
            await gate.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert slots.waiting == 0
    gate.set()
    await holder
    async with slots.slot("b"):
        assert slots.busy == 1
    assert slots.busy == 0
