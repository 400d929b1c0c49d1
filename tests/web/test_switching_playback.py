"""Program switching seen from the browser pages, in a real Chromium against the real server.

Two live test-pattern publishers feed two inputs of one stage: ``main-cam`` at 640x360 with
AAC, ``stern-uk`` at 480x270 with Opus, so every take between them changes the resolution
and the codec string (a ``reinit``: ``SourceBuffer.changeType`` and a new init segment). The
viewer page must play through five producer takes, the slate among them, without its
``currentTime`` standing still for more than a second; a second page whose browser has no
``changeType`` must get through by renewing its MediaSource. The speaker page's tally must
follow takes and previews of its input, and its return feed must play a closed-door stage
with the speaker's stream key.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, BrowserContext, Page

from clients.publisher import publish
from clients.source import pattern_items
from server.clock import ManualClock
from server.encoding.testpattern import PatternSettings
from server.http.keys import STREAM_KEYS
from server.schedule.model import Event
from server.schedule.yaml_format import load_yaml_text
from tests.conftest import FIXTURES, Serve, at, auth
from tests.web.browser import Console, screenshot
from tests.web.test_pages import DESKTOP, MORNING, text, wait_playing

#: The longest the playhead may stand still once the first frame is shown, in seconds.
MAX_STALL = 1.0

MAIN_CAM = PatternSettings(
    label="main-cam", width=640, height=360, gop=25, bitrate=400_000, audio="aac", preset="ultrafast"
)
STERN_UK = PatternSettings(
    label="stern-uk", width=480, height=270, gop=25, bitrate=300_000, audio="opus", preset="ultrafast"
)

# Before any page script: sample the player every 100 ms and keep every JSON event the page's
# WebSockets receive (init/reinit with their MIME types, now, viewers).
SAMPLER = """
window.__samples = [];
window.__events = [];
window.__sockets = 0;
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    window.__sockets += 1;
    this.addEventListener("message", ({ data }) => {
      if (typeof data === "string") window.__events.push(JSON.parse(data));
    });
  }
};
setInterval(() => {
  const v = document.querySelector("video");
  if (v) window.__samples.push([performance.now(), v.currentTime, v.readyState, v.videoWidth, v.paused]);
}, 100);
"""
# A browser without SourceBuffer.changeType (older Safari and Firefox).
NO_CHANGE_TYPE = "delete SourceBuffer.prototype.changeType;"


def producer(stage: str) -> dict[str, str]:
    return auth("producer", stage=stage)


@contextlib.asynccontextmanager
async def publishing(
    client: TestClient[Any, Any], input_id: str, settings: PatternSettings
) -> AsyncIterator[list[dict[str, Any]]]:
    """A live test pattern on ``input_id`` for the block; yields the events it receives."""
    events: list[dict[str, Any]] = []
    stop = asyncio.Event()
    url = f"ws://127.0.0.1:{client.port}/ws/publish/{input_id}"
    key = client.app[STREAM_KEYS].key(input_id)
    task = asyncio.create_task(publish(url, key, pattern_items(settings), stop=stop, on_event=events.append))
    try:
        yield events
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task  # raises whatever made the publisher give up


@contextlib.asynccontextmanager
async def two_inputs_up(
    serve: Serve, second: PatternSettings = STERN_UK
) -> AsyncIterator[tuple[TestClient[Any, Any], str]]:
    """The server at :data:`MORNING` with ``main-cam`` (:data:`MAIN_CAM`) and ``stern-uk``
    (``second``) of stage ``main`` publishing and up; yields the client and the base URL."""
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    base = f"http://127.0.0.1:{client.port}"
    async with publishing(client, "main-cam", MAIN_CAM), publishing(client, "stern-uk", second):
        await wait_up(client, "main", "main-cam", "stern-uk")
        yield client, base


async def open_page(browser: Browser, *scripts: str) -> tuple[BrowserContext, Page, Console]:
    """A desktop page in a new context that runs ``scripts`` before any page script; the
    context, the page and its console."""
    context = await browser.new_context(viewport=DESKTOP)
    for script in scripts:
        await context.add_init_script(script)
    page = await context.new_page()
    return context, page, Console(page)


async def wait_up(client: TestClient[Any, Any], stage: str, *inputs: str, timeout: float = 15) -> None:
    """Until ``GET /api/v1/inputs`` says each of ``inputs`` is up."""
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get("/api/v1/inputs", headers=producer(stage))
            assert response.status == 200, await response.text()
            up = {i["id"] for i in (await response.json())["inputs"] if i["up"]}
            if set(inputs) <= up:
                return
            await asyncio.sleep(0.1)


async def program(client: TestClient[Any, Any], stage: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/stages/{stage}", headers=producer(stage))
    body = await response.json()
    assert response.status == 200, body
    assert "program" in body, f"GET /api/v1/stages/{stage} has no program: {sorted(body)}"
    result: dict[str, Any] = body["program"]
    return result


async def take(
    client: TestClient[Any, Any], stage: str, source: str, *, timeout: float = 5
) -> dict[str, Any]:
    """``POST …/take`` and wait until ``source`` is on air (its keyframe came)."""
    response = await client.post(
        f"/api/v1/stages/{stage}/take", json={"input": source}, headers=producer(stage)
    )
    body = await response.json()
    assert response.status == 200, f"take {source}: {response.status} {body}"
    assert body["program"]["mode"] == "manual", body
    async with asyncio.timeout(timeout):
        while True:
            state = await program(client, stage)
            if state["source"] == source and state["pending"] is None:
                assert state["reason"] == "manual" and state["slate"] == (source == "slate"), state
                return state
            await asyncio.sleep(0.05)


def longest_stall(samples: list[list[Any]]) -> tuple[float, float]:
    """The longest wall-clock time (s) in which the playhead got no further than it had been,
    after its first frame; and the page time (s) at which that stall began.

    "Further" is measured against the highest ``currentTime`` so far, so a page that renews
    its MediaSource (its ``currentTime`` reads 0 until the new media is in) counts as stalled
    until it plays past where it was.
    """
    first = next(i for i, s in enumerate(samples) if s[1] > 0 and s[2] >= 2)
    worst, worst_at = 0.0, 0.0
    best_time, since = samples[first][1], samples[first][0]
    for at_ms, current, *_ in samples[first + 1 :]:
        if current > best_time:
            best_time, since = current, at_ms
        elif (at_ms - since) / 1000 > worst:
            worst, worst_at = (at_ms - since) / 1000, since / 1000
    return worst, worst_at


async def samples_of(page: Page) -> list[list[Any]]:
    result: list[list[Any]] = await page.evaluate("window.__samples")
    return result


async def events_of(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await page.evaluate("window.__events")
    return result


async def test_viewer_page_plays_through_takes_and_the_slate(serve: Serve, browser: Browser) -> None:
    async with two_inputs_up(serve) as (client, base):
        context, page, console = await open_page(browser, SAMPLER)
        # The same stage in a browser without changeType.
        fallback_context, fallback, fallback_console = await open_page(browser, SAMPLER, NO_CHANGE_TYPE)

        await page.goto(f"{base}/#main")
        await fallback.goto(f"{base}/#main")
        await wait_playing(page, "#video")
        await wait_playing(fallback, "#video")
        assert await fallback.evaluate("typeof SourceBuffer.prototype.changeType") == "undefined"

        # The keynote's input is up: automation has it on air.
        state = await program(client, "main")
        assert state["mode"] == "auto" and state["source"] == "stern-uk", state
        await page.wait_for_selector('#now-playing[data-source="stern-uk"][data-slate="false"]')

        started = time.monotonic()
        marks = {viewer: await viewer.evaluate("performance.now()") for viewer in (page, fallback)}
        takes = ["main-cam", "stern-uk", "slate", "main-cam", "stern-uk"]
        sizes = {"main-cam": MAIN_CAM.width, "stern-uk": STERN_UK.width}
        for source in takes:
            await take(client, "main", source)
            # The page says what is on air, and the picture is the new source's.
            await page.wait_for_selector(f'#now-playing[data-source="{source}"]', timeout=5_000)
            if source == "slate":
                await page.wait_for_selector('#now-playing[data-slate="true"]', timeout=5_000)
                now_text = await text(page, "#now-playing")
                assert "Stand-by · 稍候" in now_text and "Nicholas Stern" not in now_text, now_text
                await screenshot(page, "viewer-slate")
            else:
                for viewer in (page, fallback):
                    await viewer.wait_for_function(
                        "(w) => document.getElementById('video').videoWidth === w",
                        arg=sizes[source],
                        timeout=5_000,
                    )
                now_text = await text(page, "#now-playing")
                assert "Stand-by" not in now_text and "Nicholas Stern" in now_text, now_text
            await asyncio.sleep(2.0)  # play the new source for a while
        elapsed = time.monotonic() - started

        for name, viewer in (("changeType", page), ("renewed MediaSource", fallback)):
            samples = await samples_of(viewer)
            stall, stall_at = longest_stall(samples)
            assert stall <= MAX_STALL, (
                f"{name}: the playhead stood still for {stall:.2f} s at {stall_at:.1f} s"
            )
            assert not any(s[4] for s in samples[-20:]), f"{name}: paused at the end"
            # It played the whole time (a little faster now and then, to stay near the live edge).
            played = samples[-1][1] - next(s[1] for s in samples if s[0] >= marks[viewer])
            print(f"{name}: longest stall {stall:.2f} s; {played:.1f} s played in {elapsed:.1f} s")  # -s
            assert played > elapsed - 2 * MAX_STALL, f"{name}: {played:.1f} s played in {elapsed:.1f} s"

        # The page never moved its playhead backwards (changeType keeps one MediaSource).
        times = [s[1] for s in await samples_of(page) if s[1] > 0]
        assert all(b >= a for a, b in itertools.pairwise(times)), "currentTime went backwards"

        # What the page was sent: a reinit with the other codecs at every take between inputs.
        events = await events_of(page)
        kinds = [e["type"] for e in events if e["type"] in ("init", "reinit")]
        inits = [e["mime"] for e in events if e["type"] in ("init", "reinit")]
        assert kinds[0] == "init" and set(kinds[1:]) == {"reinit"} and len(inits) >= 5, kinds
        assert any("opus" in m for m in inits) and any("mp4a.40.2" in m for m in inits), inits
        sources = [e["program"]["source"] for e in events if e["type"] == "now"]
        sources = [s for i, s in enumerate(sources) if i == 0 or s != sources[i - 1]]
        assert sources[-len(takes) :] == takes, sources
        wrong = [
            e for e in events if e["type"] == "now" and e.get("slate") != (e["program"]["source"] == "slate")
        ]
        assert wrong == [], [(e.get("slate"), e["program"]) for e in wrong]
        renewals = [e for e in await events_of(fallback) if e["type"] == "reinit"]
        assert len(renewals) >= 4, renewals
        # Both pages got through on their first socket: no reconnect, no restart.
        for viewer in (page, fallback):
            assert await viewer.evaluate("window.__sockets") == 1

        await screenshot(page, "viewer-switching", full_page=True)
        assert console.errors == [] and fallback_console.errors == []
        await context.close()
        await fallback_context.close()


def closed_stage_event() -> Event:
    """The test event with two inputs on its closed-door stage."""
    source = (FIXTURES / "event.yaml").read_text(encoding="utf-8")
    closed = "    kind: closed-door\n    venue: shenzhen\n"
    assert closed in source
    inputs = (
        "    inputs:\n"
        "      - {id: closed-cam, title: Seminar room, kind: camera}\n"
        "      - {id: closed-guest, title: Remote guest, kind: remote}\n"
    )
    return load_yaml_text(source.replace(closed, closed + inputs), file="event.yaml")


async def tally(page: Page, state: str, timeout: float = 10_000) -> str:
    """Wait until the speaker page's tally is in ``state``; its text."""
    await page.wait_for_function(
        "(s) => document.getElementById('tally').dataset.state === s", arg=state, timeout=timeout
    )
    return await text(page, "#tally")


async def colour(page: Page, selector: str) -> str:
    result: str = await page.locator(selector).evaluate("e => getComputedStyle(e).backgroundColor")
    return result


async def test_speaker_tally_follows_takes_and_the_return_feed_plays_a_closed_stage(
    serve: Serve, browser: Browser
) -> None:
    client = await serve(event=closed_stage_event(), clock=ManualClock(at(MORNING), rate=1.0))
    base = f"http://127.0.0.1:{client.port}"
    keys = client.app[STREAM_KEYS]
    camera = PatternSettings(
        label="closed-cam", width=320, height=180, gop=25, bitrate=200_000, preset="ultrafast"
    )
    async with publishing(client, "closed-cam", camera):
        context, page, console = await open_page(browser)
        await page.goto(f"{base}/speaker?input=closed-guest&key={keys.key('closed-guest')}")
        await page.click("#go-live")

        # Connected to a stage whose session is not streamed: the slate is on air, not us.
        assert await tally(page, "standby") == "Standby, not on air · 待命，未播出"
        await page.wait_for_function("() => document.getElementById('stage-id').value === 'closed'")
        await wait_up(client, "closed", "closed-cam", "closed-guest")
        assert (await program(client, "closed"))["source"] == "slate"

        # The return feed: the closed stage's program, with the speaker's stream key only.
        await page.click("#return-form button[type=submit]")
        await wait_playing(page, "#return-feed")

        await take(client, "closed", "closed-guest")
        assert await tally(page, "on-air") == "ON AIR · 直播中"
        assert await colour(page, "#tally") == "rgb(200, 16, 46)"  # red
        await screenshot(page, "speaker-on-air", full_page=True)

        await take(client, "closed", "closed-cam")
        assert await tally(page, "standby") == "Standby, not on air · 待命，未播出"

        # A producer previews the input: PREVIEW (green) while not on air; on air wins.
        preview_url = f"ws://127.0.0.1:{client.port}/ws/watch/input/closed-guest"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(preview_url, headers=producer("closed")) as preview,
        ):
            assert await tally(page, "preview") == "PREVIEW · 预览中"
            assert await colour(page, "#tally") == "rgb(29, 122, 79)"  # green
            await take(client, "closed", "closed-guest")
            assert await tally(page, "on-air") == "ON AIR · 直播中"
            await take(client, "closed", "slate")
            assert await tally(page, "preview") == "PREVIEW · 预览中"
            await preview.close()
        assert await tally(page, "standby") == "Standby, not on air · 待命，未播出"

        # The return feed kept playing through all of it.
        played = await page.evaluate("() => document.getElementById('return-feed').currentTime")
        await asyncio.sleep(1.5)
        assert await page.evaluate("() => document.getElementById('return-feed').currentTime") > played + 0.5

        await page.click("#stop")
        assert await tally(page, "off") == "OFF · 未连接"
        assert console.errors == []
        await context.close()


async def test_viewer_page_plays_through_a_change_of_track_set(serve: Serve, browser: Browser) -> None:
    """A source without audio after one with: MSE cannot change a SourceBuffer's track set
    (not even with changeType), so the page renews its MediaSource on the same socket."""
    silent = dataclasses.replace(STERN_UK, width=320, height=180, audio="none")
    async with two_inputs_up(serve, silent) as (client, base):
        context, page, console = await open_page(browser, SAMPLER)
        await page.goto(f"{base}/#main")
        await wait_playing(page, "#video")
        for source in ["main-cam", "stern-uk", "main-cam"]:
            await take(client, "main", source)
            width = {"main-cam": MAIN_CAM.width, "stern-uk": silent.width}[source]
            await page.wait_for_function(
                "(w) => document.getElementById('video').videoWidth === w", arg=width, timeout=5_000
            )
            await asyncio.sleep(2.0)
        samples = await samples_of(page)
        stall, stall_at = longest_stall(samples)
        print(f"track set change: longest stall {stall:.2f} s")  # -s
        assert stall <= MAX_STALL, f"the playhead stood still for {stall:.2f} s at {stall_at:.1f} s"
        inits = [e["mime"] for e in await events_of(page) if e["type"] in ("init", "reinit")]
        assert any("mp4a" not in m and "opus" not in m for m in inits), inits
        assert any("mp4a.40.2" in m for m in inits), inits
        assert await page.evaluate("window.__sockets") == 1
        assert console.errors == []
        await context.close()
