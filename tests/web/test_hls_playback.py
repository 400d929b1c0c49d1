"""The viewer page playing a stage's Low-Latency HLS, in a real Chromium against the real server.

Two live test-pattern publishers feed two inputs of stage ``main`` (``main-cam`` 640x360 with
AAC, ``stern-uk`` 480x270 with Opus, as in ``test_switching_playback``), so every take between
them is a discontinuity with a new ``EXT-X-MAP``: other resolution, other audio codec. The page,
with HLS chosen, must play the stage with hls.js (Chromium's own HLS player is not the
low-latency one) and keep playing through producer takes: ``currentTime`` advances all along
and the picture becomes the new source's. A browser without Media Source Extensions gets HLS
without being asked, from its own player.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from playwright.async_api import Browser, Page

from server.clock import ManualClock
from tests.conftest import TOKENS, Serve, at
from tests.live.test_hls_viewers import hls_viewers
from tests.web.browser import screenshot
from tests.web.test_pages import MORNING, wait_playing
from tests.web.test_switching_playback import (
    MAIN_CAM,
    STERN_UK,
    longest_stall,
    open_page,
    program,
    publishing,
    samples_of,
    take,
    two_inputs_up,
    wait_up,
)

#: The longest the playhead may stand still once playing. hls.js loads the first part of
#: the new source after the discontinuity, appends its init segment, and goes on.
MAX_STALL = 1.5

# Before any page script: sample the player every 100 ms, and count what the page fetched
# of the stage's HLS.
SAMPLER = """
window.__samples = [];
setInterval(() => {
  const v = document.querySelector("video");
  if (v) window.__samples.push([performance.now(), v.currentTime, v.readyState, v.videoWidth, v.paused]);
}, 100);
"""
# A browser without Media Source Extensions (an iPhone's Safari before 17.1).
NO_MSE = "delete window.MediaSource; delete window.ManagedMediaSource; delete window.WebKitMediaSource;"


async def counted(client: Any, stage: str, *, timeout: float = 6.0) -> int:
    """The stage's HLS viewers once the page's heartbeat made it 1 (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while await hls_viewers(client.app, stage) != 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return await hls_viewers(client.app, stage)


def counting(page: Page) -> dict[str, int]:
    """Counts of the page's requests by kind: ``multivariant``, ``blocking`` (media playlist
    reloads with ``_HLS_msn``), ``media``, ``part``, ``init``, ``ws``."""
    counts = dict.fromkeys(("multivariant", "blocking", "media", "part", "init", "ws"), 0)

    def seen(url: str) -> None:
        if "/ws/watch/" in url:
            counts["ws"] += 1
        elif "/index.m3u8" in url:
            counts["multivariant"] += 1
        elif "/media.m3u8" in url:
            counts["blocking" if "_HLS_msn=" in url else "media"] += 1
        elif "/part/" in url:
            counts["part"] += 1
        elif "/init/" in url:
            counts["init"] += 1

    page.on("request", lambda request: seen(request.url))
    page.on("websocket", lambda ws: seen(ws.url))
    return counts


async def engine(page: Page) -> str | None:
    result: str | None = await page.evaluate("document.getElementById('video').dataset.engine ?? null")
    return result


async def test_viewer_page_plays_hls_through_takes(serve: Serve, browser: Browser) -> None:
    async with two_inputs_up(serve) as (client, base):
        context, page, console = await open_page(browser, SAMPLER)
        requests = counting(page)

        # The page starts on the WebSocket; the viewer chooses HLS.
        await page.goto(f"{base}/#main")
        ws_choice = page.locator("input[name=protocol][value=ws]")
        hls_choice = page.locator("input[name=protocol][value=hls]")
        assert await ws_choice.is_checked() and await ws_choice.is_enabled()
        await wait_playing(page, "#video")
        await hls_choice.check()
        await page.wait_for_function("() => document.getElementById('video').dataset.engine === 'hls.js'")
        await wait_playing(page, "#video")
        assert await page.evaluate("document.getElementById('video').src.startsWith('blob:')")
        assert await page.evaluate("localStorage.getItem('forumcast.protocol')") == "hls"

        state = await program(client, "main")
        assert state["source"] == "stern-uk", state
        await page.wait_for_function(
            "(w) => document.getElementById('video').videoWidth === w", arg=STERN_UK.width, timeout=5_000
        )
        # The page asks the stage document for what is on air (HLS has no event channel).
        await page.wait_for_selector('#now-playing[data-source="stern-uk"]', timeout=10_000)

        mark = await page.evaluate("performance.now()")
        started = time.monotonic()
        sizes = {"main-cam": MAIN_CAM.width, "stern-uk": STERN_UK.width}
        takes = ["main-cam", "stern-uk", "main-cam"]
        for source in takes:
            await take(client, "main", source)
            await page.wait_for_function(
                "(w) => document.getElementById('video').videoWidth === w", arg=sizes[source], timeout=8_000
            )
            await asyncio.sleep(2.5)  # play the new source for a while
        elapsed = time.monotonic() - started
        await page.wait_for_selector('#now-playing[data-source="main-cam"]', timeout=10_000)

        samples: list[list[Any]] = [s for s in await samples_of(page) if s[0] >= mark]
        stall, stall_at = longest_stall(samples)
        played = samples[-1][1] - samples[0][1]
        print(f"hls.js: longest stall {stall:.2f} s; {played:.1f} s played in {elapsed:.1f} s")  # -s
        assert stall <= MAX_STALL, f"the playhead stood still for {stall:.2f} s at {stall_at:.1f} s"
        assert played > elapsed - 2 * MAX_STALL, f"{played:.1f} s played in {elapsed:.1f} s"
        assert not any(s[4] for s in samples[-20:]), "paused at the end"
        # Low latency: close to the live edge, from parts and blocking reloads.
        behind = await page.evaluate(
            """() => {
                const v = document.getElementById("video");
                return v.buffered.end(v.buffered.length - 1) - v.currentTime;
            }"""
        )
        assert behind < 3.0, f"{behind:.1f} s behind the buffered end"
        assert requests["part"] > 20 and requests["blocking"] > 10, requests
        assert requests["init"] >= 1 + len(takes), requests  # a new EXT-X-MAP at every take
        assert await counted(client, "main") == 1  # its heartbeat: one HLS viewer

        # Back to the WebSocket: the HLS player lets go of the video.
        await ws_choice.check()
        await page.wait_for_function("() => document.getElementById('video').dataset.engine === undefined")
        await wait_playing(page, "#video")
        assert requests["ws"] == 2, requests
        await screenshot(page, "viewer-hls")
        assert console.errors == []
        await context.close()


async def test_a_browser_without_mse_gets_hls(serve: Serve, browser: Browser) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    base = f"http://127.0.0.1:{client.port}"
    async with publishing(client, "stern-uk", STERN_UK):
        await wait_up(client, "main", "stern-uk")
        context, page, console = await open_page(browser, NO_MSE)
        requests = counting(page)
        await page.goto(f"{base}/#main")
        await wait_playing(page, "#video")
        assert await page.evaluate("typeof MediaSource") == "undefined"
        assert await page.locator("input[name=protocol][value=hls]").is_checked()
        assert await page.locator("input[name=protocol][value=ws]").is_disabled()
        assert "HLS only" in await page.inner_text("#protocol-note")
        # No MSE, so no hls.js: the browser's own player (Chromium has one too).
        assert await engine(page) == "native"
        assert requests["ws"] == 0 and requests["multivariant"] >= 1, requests
        assert await counted(client, "main") == 1
        assert console.errors == []
        await context.close()


async def test_a_closed_stage_plays_hls_with_its_invitation_on_every_url(
    serve: Serve, browser: Browser
) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    base = f"http://127.0.0.1:{client.port}"
    invitation = TOKENS.issue("viewer:closed", ttl=timedelta(hours=1), subject="test")
    context, page, console = await open_page(browser, "localStorage.setItem('forumcast.protocol', 'hls');")
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url) if "/live/" in request.url else None)
    await page.goto(f"{base}/?token={invitation}#closed")  # named in the address: it plays
    await wait_playing(page, "#video")  # nobody publishes: the stage's slate
    assert await engine(page) == "hls.js"
    assert await page.locator("input[name=protocol][value=hls]").is_checked()
    kinds = {kind for url in urls for kind in ("index.m3u8", "media.m3u8", "/init/", "/part/") if kind in url}
    assert kinds == {"index.m3u8", "media.m3u8", "/init/", "/part/"}, urls
    assert await counted(client, "closed") == 1  # the heartbeat carries the invitation too
    assert all(f"token={invitation}" in url for url in urls), [u for u in urls if invitation not in u]
    assert "/live/closed/heartbeat?token=" in "".join(urls)
    assert console.errors == []
    await context.close()
