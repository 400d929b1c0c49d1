"""The live path's gauges for the dashboards, moved by real publishers and viewers on loopback.

Served inside the fixture's opening session (stage main, input main-cam): the clip of
``tests/conftest.py`` has a keyframe every 25 frames at 25 fps, a one-second GOP.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from server.clock import ManualClock
from server.http.keys import CLOCK, EVENT
from tests.conftest import Serve
from tests.live.test_relay import Client, clip_items, publisher, raw_viewer, serve_on_air, watcher
from tests.support.metrics_text import samples, value

#: The clip's GOP in seconds (make_clip: gop=25 at 25 fps).
CLIP_GOP = 1.0


async def metrics(client: Client) -> str:
    text: str = await (await client.get("/metrics")).text()
    return text


async def until(client: Client, name: str, wanted: float | None, within: float = 5.0, **labels: str) -> str:
    """/metrics once ``name{labels}`` is ``wanted`` (None: absent)."""
    deadline = time.monotonic() + within
    text = ""
    while time.monotonic() < deadline:
        text = await metrics(client)
        if value(text, name, **labels) == wanted:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name}{labels} is {value(text, name, **labels)}, not {wanted}")


async def test_keyframe_interval_and_fragment_age_follow_the_publisher(serve: Serve, clip: Path) -> None:
    client = await serve_on_air(serve)
    init, fragments = clip_items(clip)
    text = await metrics(client)
    assert value(text, "forumcast_input_keyframe_interval_seconds", input="main-cam") is None
    pub = await publisher(client, "main-cam")
    await pub.send_bytes(init.data)
    for fragment in fragments:
        await pub.send_bytes(fragment.data)
    await until(client, "forumcast_input_keyframe_interval_seconds", CLIP_GOP, input="main-cam")
    await asyncio.sleep(1.2)  # nothing more sent: the last fragment ages
    age = value(await metrics(client), "forumcast_input_fragment_age_seconds", input="main-cam")
    assert age is not None and age >= 1.0
    await pub.close()  # no publisher here: the input's own gauges go (input_up says it is down)
    await until(client, "forumcast_input_keyframe_interval_seconds", None, input="main-cam")
    assert value(await metrics(client), "forumcast_input_fragment_age_seconds", input="main-cam") is None


async def test_publisher_connects_count_reconnects(serve: Serve) -> None:
    client = await serve_on_air(serve)
    name = "forumcast_publisher_connects_total"
    assert value(await metrics(client), name, input="main-cam") == 0.0
    for connects in (1, 2):
        pub = await publisher(client, "main-cam")
        assert value(await metrics(client), name, input="main-cam") == connects
        await pub.close()
    assert value(await metrics(client), name, input="stern-uk") == 0.0


async def test_inputs_on_the_bill_of_the_live_session_are_expected(serve: Serve) -> None:
    client = await serve_on_air(serve)  # the opening session on main, input main-cam
    text = await until(client, "forumcast_input_expected", 1.0, input="main-cam")
    assert value(text, "forumcast_input_expected", input="stern-uk") == 0.0


async def test_the_running_session_is_named_on_its_stage(serve: Serve) -> None:
    client = await serve_on_air(serve)  # the opening session on main
    title = next(s for s in client.app[EVENT].sessions if s.id == "opening").title.en
    name = "forumcast_stage_session"
    text = await until(client, name, 1.0, stage="main", session="opening", title=title)
    assert [k for k in samples(text) if k[0] == name and ("stage", "main") in k[1]] == [
        (name, frozenset({("stage", "main"), ("session", "opening"), ("title", title)}))
    ]
    # the session ends: the stage has no session series until the next one starts
    clock = client.app[CLOCK]
    assert isinstance(clock, ManualClock)
    end = next(s for s in client.app[EVENT].sessions if s.id == "opening").end
    await clock.run(end.timestamp() - clock.wall() + 1.5)
    await until(client, name, None, stage="main", session="opening", title=title)


async def test_a_viewer_that_stops_reading_counts_as_behind(serve: Serve, clip: Path) -> None:
    client = await serve_on_air(serve, send_budget=64 * 1024, max_behind=60)
    init, fragments = clip_items(clip)
    normal = await watcher(client)
    slow = raw_viewer(client.port, receive_buffer=4096)
    try:
        await asyncio.sleep(0.2)
        pub = await publisher(client, "main-cam")
        reading = asyncio.create_task(normal.read_until(4 * len(fragments), timeout=20))
        for _ in range(4):
            await pub.send_bytes(init.data)
            for fragment in fragments:
                await pub.send_bytes(fragment.data)
                await asyncio.sleep(0.01)
        await reading
        await until(client, "forumcast_viewers_behind", 1.0, stage="main")  # the slow one, not both
        slow.close()
        await until(client, "forumcast_viewers_behind", 0.0, stage="main")
        await pub.close()
    finally:
        slow.close()


async def test_ttff_is_observed_once_per_viewer_at_its_first_fragment(serve: Serve, clip: Path) -> None:
    client = await serve_on_air(serve)
    count = "forumcast_viewer_ttff_seconds_count"
    assert value(await metrics(client), count, protocol="ws") == 0.0
    init, fragments = clip_items(clip)
    connected = time.monotonic()
    viewer = await watcher(client)
    pub = await publisher(client, "main-cam")
    await pub.send_bytes(init.data)
    for fragment in fragments:
        await pub.send_bytes(fragment.data)
    await viewer.read_until(3)
    waited = time.monotonic() - connected
    text = await metrics(client)
    assert value(text, count, protocol="ws") == 1.0  # once, however many fragments followed
    ttff = value(text, "forumcast_viewer_ttff_seconds_sum", protocol="ws")
    assert ttff is not None and 0.0 < ttff < waited
    await pub.close()
