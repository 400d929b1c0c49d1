"""The producer console (/producer) in a real Chromium against the real server on loopback.

Two real publishers (the PyAV test pattern, like ``forumcast publish --test-pattern``) feed the
two inputs of stage ``main``; the console logs in with a producer token, previews both inputs
through MSE, and switches the stage's program with its buttons. Every outcome is checked both
on the page and in the server's own API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from clients.publisher import publish
from clients.source import pattern_items
from server.clock import ManualClock
from server.encoding.testpattern import PatternSettings
from server.http.keys import LIVE, STREAM_KEYS
from server.live.inputs import InputState
from tests.conftest import TOKENS, Serve, at
from tests.web.browser import Console, screenshot
from tests.web.test_pages import DESKTOP, text, wait_playing

OPENING = "2020-12-06T09:30:00+08:00"  # the opening (fed by main-cam) runs on stage main
#: The two inputs of stage main: different GOP lengths and picture sizes.
PATTERNS = {
    "main-cam": PatternSettings(label="main-cam", width=320, height=180, gop=25, preset="ultrafast"),
    "stern-uk": PatternSettings(label="stern-uk", width=480, height=270, gop=50, preset="ultrafast"),
}


class Publishers:
    """The test pattern published into each input of ``PATTERNS``, with the tallies they get."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.stops = {name: asyncio.Event() for name in PATTERNS}
        self.tallies: dict[str, list[dict[str, Any]]] = {name: [] for name in PATTERNS}
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def start(self) -> None:
        keys = self.client.app[STREAM_KEYS]
        for name, settings in PATTERNS.items():
            url = f"ws://127.0.0.1:{self.client.port}/ws/publish/{name}"

            def on_event(message: dict[str, Any], name: str = name) -> None:
                if message.get("type") == "tally":
                    self.tallies[name].append(message)

            self.tasks[name] = asyncio.create_task(
                publish(
                    url,
                    keys.key(name),
                    pattern_items(settings),
                    stop=self.stops[name],
                    on_event=on_event,
                ),
                name=f"publish-{name}",
            )

    async def wait_live(self, timeout: float = 15.0) -> None:
        hub = self.client.app[LIVE]
        try:
            async with asyncio.timeout(timeout):
                while not all(
                    hub.inputs[name].state is InputState.LIVE and hub.inputs[name].gop_seconds
                    for name in PATTERNS
                ):
                    for task in self.tasks.values():
                        if task.done():
                            task.result()  # a publisher that gave up: its error
                    await asyncio.sleep(0.1)
        except TimeoutError:
            states = {name: hub.inputs[name].state.value for name in PATTERNS}
            pytest.fail(f"the test-pattern publishers did not go live within {timeout} s: {states}")

    def tally(self, name: str, key: str) -> bool:
        """The last tally ``name``'s publisher got says ``key`` (on_air, preview)."""
        return bool(self.tallies[name]) and self.tallies[name][-1].get(key) is True

    async def kill(self, name: str) -> None:
        """Stop publishing into ``name`` (its publisher disconnects)."""
        self.stops[name].set()
        async with asyncio.timeout(10):
            await self.tasks[name]

    async def close(self) -> None:
        for stop in self.stops.values():
            stop.set()
        async with asyncio.timeout(10):
            await asyncio.gather(*self.tasks.values())


@pytest.fixture
async def publishing(serve: Serve) -> AsyncIterator[Publishers]:
    client = await serve(clock=ManualClock(at(OPENING), rate=1.0))
    publishers = Publishers(client)
    publishers.start()
    try:
        await publishers.wait_live()
        yield publishers
    finally:
        await publishers.close()


async def stage_api(client: TestClient[Any, Any], token: str) -> dict[str, Any]:
    response = await client.get("/api/v1/stages/main", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds, or fail saying ``what`` did not happen."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"{what} did not happen within {timeout} s")


async def picture_size(page: Page, video: str, pattern: PatternSettings, timeout: float = 5_000) -> None:
    """``video`` shows ``pattern``'s picture size within ``timeout`` ms (a GOP plus the player's latency)."""
    try:
        await page.wait_for_function(
            """([sel, w, h]) => {
                const v = document.querySelector(sel);
                return v.videoWidth === w && v.videoHeight === h;
            }""",
            arg=[video, pattern.width, pattern.height],
            timeout=timeout,
        )
    except PlaywrightTimeout:
        size = await page.eval_on_selector(video, "v => `${v.videoWidth}x${v.videoHeight}`")
        pytest.fail(f"{video} still shows {size}, not {pattern.label}'s {pattern.width}x{pattern.height}")


async def session_times(page: Page) -> dict[str, tuple[datetime, datetime]]:
    """The upcoming sessions on the page: id -> (start, end) from their <time datetime>."""
    rows = await page.eval_on_selector_all(
        "#upcoming li[data-session]",
        """ls => ls.map(l => [l.dataset.session,
            l.querySelector('time.start').getAttribute('datetime'),
            l.querySelector('time.end').getAttribute('datetime')])""",
    )
    return {sid: (datetime.fromisoformat(start), datetime.fromisoformat(end)) for sid, start, end in rows}


async def test_producer_console_takes_inputs(publishing: Publishers, browser: Browser) -> None:
    client = publishing.client
    base = f"http://127.0.0.1:{client.port}"
    token = TOKENS.issue("producer", stage="main", ttl=timedelta(hours=1), subject="test-producer")
    hub = client.app[LIVE]

    context = await browser.new_context(viewport=DESKTOP, timezone_id="Europe/Paris")
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"{base}/producer")
    init = hub.inputs["stern-uk"].init
    assert init is not None
    mime = init.mime
    assert await page.evaluate("(m) => MediaSource.isTypeSupported(m)", mime), (
        f"this Chromium cannot play {mime} through MSE (it needs H.264 and AAC)"
    )

    # Log in by pasting the token; the console opens on the token's stage, and a reload keeps it.
    assert await page.locator("#login").is_visible()
    assert await page.locator("#console").is_hidden()
    await page.fill("#token", token)
    await page.click("#login-button")
    await page.locator("#console").wait_for(state="visible")
    assert await page.input_value("#stage") == "main"
    assert "producer" in await text(page, "#who") and "main" in await text(page, "#who")
    await page.reload()
    await page.locator("#console").wait_for(state="visible")
    assert await page.locator("#login").is_hidden()
    assert await page.input_value("#stage") == "main"
    assert await page.eval_on_selector_all("#stage option", "os => os.map(o => o.value)") == ["main"]

    # A card per input of the stage, each with a playing muted preview and its health.
    await page.locator('[data-input="stern-uk"] .badge-health', has_text="UP").wait_for()
    cards = await page.eval_on_selector_all("#inputs [data-input]", "cs => cs.map(c => c.dataset.input)")
    assert cards == ["main-cam", "stern-uk"]
    for name in PATTERNS:
        await wait_playing(page, f'[data-input="{name}"] video')
        assert await page.eval_on_selector(f'[data-input="{name}"] video', "v => v.muted")
    assert await text(page, '[data-input="main-cam"] .resolution') == "320×180"
    assert await text(page, '[data-input="stern-uk"] .resolution') == "480×270"
    assert await text(page, '[data-input="main-cam"] .gop') == "1.00 s"
    assert await text(page, '[data-input="stern-uk"] .gop') == "2.00 s"
    assert "avc1." in await text(page, '[data-input="main-cam"] .codecs')
    assert "kbit/s" in await text(page, '[data-input="main-cam"] .bitrate')
    # Being previewed shows as PREVIEW on the card and in the publisher's tally.
    await page.locator('[data-input="stern-uk"] .badge-preview').wait_for(state="visible")
    await until(lambda: publishing.tally("stern-uk", "preview"), "the preview tally of stern-uk")

    # The program: the schedule has the opening's input on air; its player plays; one viewer (us).
    await page.locator('#program-source[data-source="main-cam"]').wait_for()
    assert await page.get_attribute("#program-mode", "data-mode") == "auto"
    assert await page.get_attribute("#program-reason", "data-reason") == "schedule"
    assert await page.get_attribute("#auto", "aria-pressed") == "true"
    await wait_playing(page, "#program-video")
    await page.locator("#viewers", has_text="1 watching").wait_for()
    assert await page.locator('[data-input="main-cam"] .badge-onair').is_visible()
    assert await text(page, '[data-input="main-cam"] .tally-state') == "ON AIR · 播出中"
    assert await page.locator('[data-input="stern-uk"] .badge-onair').is_hidden()

    # Take the second input: the program follows (page and API), manual mode, tally on air.
    await page.click('[data-input="stern-uk"] button.take')
    await page.locator('#program-source[data-source="stern-uk"]').wait_for(timeout=10_000)
    assert "stern-uk" in await text(page, "#program-source")
    await page.locator('#program-mode[data-mode="manual"]').wait_for()
    program = (await stage_api(client, token))["program"]
    assert program["source"] == "stern-uk" and program["mode"] == "manual", program
    assert program["reason"] == "manual", program
    assert await page.get_attribute("#auto", "aria-pressed") == "false"
    await page.locator('[data-input="stern-uk"] .badge-onair').wait_for(state="visible")
    await page.locator('[data-input="main-cam"] .badge-onair').wait_for(state="hidden")
    await until(lambda: publishing.tally("stern-uk", "on_air"), "the on-air tally of stern-uk")
    # The program's picture follows too: stern-uk's size, still playing across the reinit.
    await picture_size(page, "#program-video", PATTERNS["stern-uk"])
    await wait_playing(page, "#program-video")
    assert await text(page, "#error") == ""
    await screenshot(page, "producer-manual", full_page=True)

    # Auto: back to the schedule, which has main-cam on air for the opening.
    await page.click("#auto")
    await page.locator('#program-mode[data-mode="auto"]').wait_for()
    await page.locator('#program-source[data-source="main-cam"]').wait_for(timeout=10_000)
    program = (await stage_api(client, token))["program"]
    assert program["mode"] == "auto" and program["source"] == "main-cam", program
    assert await page.get_attribute("#auto", "aria-pressed") == "true"
    await picture_size(page, "#program-video", PATTERNS["main-cam"])
    await wait_playing(page, "#program-video")

    # Delay +5: the running session ends 5 min later, every later one moves by 5 min.
    before = await session_times(page)
    assert list(before) == ["opening", "keynote", "afternoon", "day-two"], before
    await page.click("#delay-plus")
    five = timedelta(minutes=5)
    await page.locator("#delay-total", has_text="+5 min").wait_for()
    await page.locator('[data-session="keynote"] time.start', has_text="10:05").wait_for()  # venue clock
    after = await session_times(page)
    assert after["opening"] == (before["opening"][0], before["opening"][1] + five), after
    for sid in ("keynote", "afternoon", "day-two"):
        assert after[sid] == (before[sid][0] + five, before[sid][1] + five), (sid, before[sid], after[sid])
    assert (await stage_api(client, token))["delay_minutes"] == 5
    await page.click("#delay-minus")
    await page.locator("#delay-total", has_text="On time").wait_for()
    assert (await session_times(page)) == before

    assert await text(page, "#error") == ""
    await screenshot(page, "producer", full_page=True)

    # The on-air publisher goes: failover to the slate, shown live; taking the dead input is a 409.
    await publishing.kill("main-cam")
    await page.locator('#program-source[data-source="slate"]').wait_for(timeout=10_000)
    assert await page.get_attribute("#program-reason", "data-reason") == "failover"
    await page.locator('[data-input="main-cam"] .badge-health', has_text="OFFLINE").wait_for()
    await page.click('[data-input="main-cam"] button.take')
    await page.locator("#error", has_text="409").wait_for()
    shown = await text(page, "#error")
    assert "program.input_down" in shown and "main-cam" in shown, shown
    program = (await stage_api(client, token))["program"]
    assert program["source"] == "slate" and program["reason"] == "failover", program
    await screenshot(page, "producer-failover", full_page=True)
    # The browser logs the refused take; nothing else may fail.
    unexpected = [e for e in console.errors if "status of 409" not in e]
    assert unexpected == [], console.errors
    await context.close()


async def test_producer_console_refuses_a_bad_token(serve: Serve, browser: Browser) -> None:
    client = await serve(clock=ManualClock(at(OPENING), rate=1.0))
    base = f"http://127.0.0.1:{client.port}"
    refused = await client.get("/api/v1/inputs", headers={"Authorization": "Bearer not-a-token"})
    assert refused.status == 401
    message = (await refused.json())["error"]["message"]

    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"{base}/producer?token=not-a-token")
    error = page.locator("#error")
    await page.locator("#error", has_text="401").wait_for()
    shown = await text(page, "#error")
    assert message in shown and "auth.invalid_token" in shown, shown
    assert await error.get_attribute("role") == "alert"
    assert await page.locator("#login").is_visible()
    assert await page.locator("#console").is_hidden()
    assert "token=" not in page.url  # taken out of the address bar
    assert await page.evaluate("() => sessionStorage.getItem('forumcast.producer.token')") is None

    # A viewer's invitation is no producer token: 403, said in the server's words.
    invitation = TOKENS.issue("viewer:closed", ttl=timedelta(hours=1))
    await page.fill("#token", invitation)
    await page.click("#login-button")
    await page.locator("#error", has_text="403").wait_for()
    assert "needs a producer token" in await text(page, "#error")
    assert await page.locator("#console").is_hidden()
    await screenshot(page, "producer-refused")
    # The browser logs each refused request; nothing else may fail.
    unexpected = [e for e in console.errors if "status of 401" not in e and "status of 403" not in e]
    assert unexpected == [], console.errors
    await context.close()
