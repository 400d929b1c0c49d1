"""The browser pages in a real Chromium (Playwright, async API) against the real server on loopback.

The viewer page must play a stage's live program through Media Source Extensions and show
the schedule in the chosen time zone; the speaker page must publish the (fake) camera to its
input with MediaRecorder's fragmented MP4. Chromium is the system's (``apt-get install
chromium``): these tests never download a browser.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, Page

from server.clock import Clock, ManualClock
from server.http.keys import CLOCK, LIVE, STREAM_KEYS
from server.live.demo import loop_clip
from server.live.inputs import InputState, LiveInput
from server.media.fmp4 import split_clip
from server.media.types import InitSegment, MediaFragment
from tests.conftest import Serve, at, auth
from tests.web.browser import Console, screenshot

DESKTOP = {"width": 1280, "height": 900}
MORNING = "2020-12-06T10:15:00+08:00"  # the keynote (remote speaker) is live on stage main


@contextlib.asynccontextmanager
async def looping(live: LiveInput, clip: Path, clock: Clock) -> AsyncIterator[InitSegment]:
    """Publish ``clip`` into ``live`` in real time, as the demo does, for the block's duration."""
    init, fragments = split_clip(clip.read_bytes())
    task = asyncio.create_task(loop_clip(live, init, fragments, clock))
    try:
        yield init
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_playing(page: Page, video: str, timeout: float = 15_000) -> None:
    """``video`` decodes frames and its currentTime advances by more than a second."""
    start = await page.wait_for_function(
        """(sel) => {
            const v = document.querySelector(sel);
            return v.currentTime > 0 && !v.paused && v.readyState >= 2 ? v.currentTime : false;
        }""",
        arg=video,
        timeout=timeout,
    )
    t0 = await start.json_value()
    await page.wait_for_function(
        """([sel, t0]) => {
            const v = document.querySelector(sel);
            return v.currentTime > t0 + 1 && v.getVideoPlaybackQuality().totalVideoFrames > 0;
        }""",
        arg=[video, t0],
        timeout=timeout,
    )


async def text(page: Page, selector: str) -> str:
    """The rendered text of ``selector``, whitespace collapsed."""
    return " ".join((await page.locator(selector).inner_text()).split())


async def test_viewer_plays_a_stage_and_its_schedule(serve: Serve, clip: Path, browser: Browser) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    base = f"http://127.0.0.1:{client.port}"
    async with looping(client.app[LIVE].inputs["main-cam"], clip, client.app[CLOCK]) as init:
        context = await browser.new_context(timezone_id="Europe/Paris", viewport=DESKTOP)
        page = await context.new_page()
        console = Console(page)
        await page.goto(f"{base}/")
        supported = await page.evaluate("(mime) => MediaSource.isTypeSupported(mime)", init.mime)
        assert supported, f"this Chromium cannot play {init.mime} through MSE (it needs H.264 and AAC)"

        # The stage list: live stages first, the closed-door one marked and locked.
        await page.wait_for_selector('#stage-list button[data-stage="main"]')
        states = await page.eval_on_selector_all("#stage-list button", "bs => bs.map(b => b.dataset.state)")
        assert states[0] == "live" and states == sorted(states, key=lambda s: s != "live"), states
        assert await page.locator('#stage-list button[data-stage="closed"] .lock').count() == 1
        assert await text(page, "#event-title") == "测试论坛 Test Forum"

        await page.click('#stage-list button[data-stage="main"]')
        await wait_playing(page, "#video")

        # Now playing (from the watch socket's "now" event) and the viewer count.
        now = page.locator("#now-playing")
        await now.get_by_text("Nicholas Stern").wait_for()
        # The keynote's own input is down, its backup (main-cam) is on air: not the slate.
        await page.wait_for_selector('#now-playing[data-source="main-cam"][data-slate="false"]')
        now_text = await now.inner_text()
        assert "主旨演讲" in now_text and "Keynote" in now_text and "remote" in now_text, now_text
        assert await now.get_attribute("aria-live") == "polite"
        await page.locator("#viewers", has_text="1 watching").wait_for()

        # The schedule of stage main, today (the server's clock) in the event's zone.
        assert await page.is_checked("input[name=tz][value=event]")
        assert await text(page, "#tz-event") == "(Asia/Shanghai)"
        assert await text(page, "#tz-local") == "(Europe/Paris)"
        assert "Today" in await text(page, '#day-tabs [aria-selected="true"]')
        sessions = await page.eval_on_selector_all("#sessions > li", "ls => ls.map(l => l.dataset.session)")
        assert sessions == ["opening", "keynote", "afternoon"]
        assert await text(page, '[data-session="opening"] .when') == "09:00–10:00"
        assert "Now" in await text(page, '[data-session="keynote"]')

        # The browser's zone (Paris, UTC+1 in December): remembered across a reload.
        await page.check("input[name=tz][value=local]")
        assert await text(page, '[data-session="opening"] .when') == "02:00–03:00"
        await page.click('#stage-list button[data-stage="europe"]')
        # Nothing on in Lyon: its program is the slate, and the page does not pretend otherwise.
        await page.wait_for_selector('#now-playing[data-source="slate"][data-slate="true"]')
        europe_now = await text(page, "#now-playing")
        assert "Stand-by · 稍候" in europe_now and "Between sessions" in europe_now, europe_now
        lyon = page.locator('[data-session="lyon"] .when')
        await lyon.wait_for()
        assert await lyon.inner_text() == "14:30–17:30"
        await page.check("input[name=tz][value=event]")
        assert await lyon.inner_text() == "21:30–00:30 (+1)"
        assert "14:30–17:30 Lyon time (Europe/Paris)" in await text(page, '[data-session="lyon"]')
        await page.check("input[name=tz][value=local]")
        await page.reload()
        await page.locator('[data-session="lyon"] .when', has_text="14:30").wait_for()
        assert await page.is_checked("input[name=tz][value=local]")

        # A closed-door stage without an invitation: no player, a plain explanation.
        await page.click('#stage-list button[data-stage="closed"]')
        await page.locator("#player-status", has_text="invitation needed").wait_for()

        await page.click('#stage-list button[data-stage="main"]')
        await wait_playing(page, "#video")
        await screenshot(page, "viewer", full_page=True)
        assert console.errors == []

        # With an invitation the closed stage's program and player open: its session is not
        # streamed, so the program is the slate, and the page says so.
        invitation = auth("viewer:closed")["Authorization"].removeprefix("Bearer ")
        invited = await context.new_page()
        invited_console = Console(invited)
        await invited.goto(f"{base}/?token={invitation}#closed")
        await invited.locator('[data-session="secret"]').wait_for()
        await wait_playing(invited, "#video")
        await invited.wait_for_selector('#now-playing[data-source="slate"][data-slate="true"]')
        closed_now = await text(invited, "#now-playing")
        assert "Stand-by · 稍候" in closed_now and "not streamed" in closed_now, closed_now
        assert invited_console.errors == []
        await context.close()


# Keeps what the page sends on its WebSockets, to inspect if the server refuses the media.
RECORD_SENT = """
window.__sent = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (data instanceof Blob && window.__sent.length < 50) window.__sent.push(data);
  return send.call(this, data);
};
"""


async def sent_bytes(page: Page) -> bytes:
    encoded = await page.evaluate(
        """async () => {
            const bytes = new Uint8Array(await new Blob(window.__sent).arrayBuffer());
            let s = "";
            for (const b of bytes) s += String.fromCharCode(b);
            return btoa(s);
        }"""
    )
    return base64.b64decode(encoded)


async def test_speaker_page_publishes_the_camera(serve: Serve, browser: Browser, tmp_path: Path) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    base = f"http://127.0.0.1:{client.port}"
    hub = client.app[LIVE]
    live = hub.inputs["stern-uk"]
    received: list[InitSegment | MediaFragment] = []
    live.listeners.append(lambda _source, item, _frame: received.append(item))

    context = await browser.new_context(viewport=DESKTOP)
    await context.add_init_script(RECORD_SENT)
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"{base}/speaker?input=stern-uk&key={client.app[STREAM_KEYS].key('stern-uk')}")
    assert await page.input_value("#input-id") == "stern-uk"
    await page.click("#go-live")

    # Connected: the tally says so.
    tally = page.locator("#tally")
    await page.wait_for_function(
        "() => ['standby', 'on-air'].includes(document.getElementById('tally').dataset.state)"
    )
    mime = (await text(page, "#mime")).removeprefix("Recording as ")
    print(f"MediaRecorder mime: {mime}")  # shown with -s

    def fragments() -> list[MediaFragment]:
        return [item for item in received if isinstance(item, MediaFragment)]

    try:
        async with asyncio.timeout(10):
            while len(fragments()) < 3:
                error = await text(page, "#error")
                assert not error, error
                await asyncio.sleep(0.1)
    except (AssertionError, TimeoutError) as exc:
        sent = await sent_bytes(page)
        (tmp_path / "speaker-sent.mp4").write_bytes(sent)
        raise AssertionError(
            f"the server did not take the page's {mime} media ({exc!r}); "
            f"page error: {await text(page, '#error')!r}; "
            f"first bytes: {sent[:64].hex()}; saved to {tmp_path / 'speaker-sent.mp4'}"
        ) from exc
    assert live.state is InputState.LIVE and live.publisher is not None and live.publisher.kind == "ws"
    # The keynote, on now, is fed by this input: automation puts it on air as soon as it is up.
    await page.wait_for_function("() => document.getElementById('tally').dataset.state === 'on-air'")
    assert await tally.inner_text() == "ON AIR · 直播中"
    assert isinstance(received[0], InitSegment) and live.init is not None
    assert any(f.keyframe for f in fragments())

    # The input's preview (a producer's view) plays what the page sends.
    token = auth("producer")["Authorization"].removeprefix("Bearer ")
    preview = await context.new_page()
    preview_console = Console(preview)
    await preview.goto(f"{base}/speaker")
    mse = await preview.evaluate("(mime) => MediaSource.isTypeSupported(mime)", live.init.mime)
    assert mse, f"this Chromium cannot play its own recording ({live.init.mime}) through MSE"
    await preview.evaluate(
        """async (path) => {
            const { LivePlayer } = await import("/static/player.js");
            window.preview = new LivePlayer(document.getElementById("return-feed"));
            window.preview.play(path);
        }""",
        f"/ws/watch/input/stern-uk?token={token}",
    )
    await wait_playing(preview, "#return-feed")

    # Stats every 2 s; the stage was filled in from the tally for the return feed.
    await page.locator("#stats", has_text="kbit/s").wait_for()
    assert await page.input_value("#stage-id") == "main"
    await screenshot(page, "speaker", full_page=True)

    await page.click("#stop")
    async with asyncio.timeout(5):
        while live.publisher is not None:
            await asyncio.sleep(0.05)
    assert await tally.get_attribute("data-state") == "off"
    assert console.errors == [] and preview_console.errors == []
    await context.close()
