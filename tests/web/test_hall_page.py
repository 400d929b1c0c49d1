"""The exhibition hall page (/hall) in a real Chromium (Playwright, async API) against the real server.

The page must draw the hall scene with three.js, place every booth of ``GET /api/v1/hall``,
filter the list and dim the scene, pick a booth in the 3D view, load an exhibit's model
from its smallest level to its largest while counting views, and send a meeting request
whose slots carry the browser's UTC offset. Chromium is the system's (never downloaded);
without a GPU its WebGL runs on SwiftShader, which ``--enable-unsafe-swiftshader`` allows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trimesh
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page

from server.clock import ManualClock
from tests.conftest import Serve, at, auth
from tests.web.browser import Console, screenshot

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
MORNING = "2020-12-06T10:15:00+08:00"
HYDROGEN = "cn-hydrogen-01"  # gets a model uploaded; the fixture catalog has none
SOLAR = "de-solar-01"
# SwiftShader draws slowly; the hall and a few models still load in seconds.
SCENE_TIMEOUT = 30_000

Client = TestClient[Any, Any]


async def upload_model(client: Client, exhibit: str) -> dict[str, Any]:
    """Upload a sphere dense enough for several LODs as the exhibitor; the finished job's model."""
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=1.0)  # 20 480 triangles
    data = sphere.export(file_type="obj").encode()
    headers = auth(f"exhibitor:{exhibit}")
    response = await client.post(
        f"/api/v1/exhibits/{exhibit}/model?filename=sphere.obj&unit=m", data=data, headers=headers
    )
    assert response.status == 202, await response.text()
    job = await response.json()
    async with asyncio.timeout(60):
        while job["state"] not in ("done", "failed"):
            await asyncio.sleep(0.2)
            job = await (await client.get(job["url"], headers=headers)).json()
    assert job["state"] == "done", job
    model: dict[str, Any] = job["model"]
    return model


async def hall_booth(client: Client, exhibit: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``GET /api/v1/hall`` and the exhibit's booth in it."""
    hall = await (await client.get("/api/v1/hall")).json()
    booth = next(b for b in hall["booths"] if b["exhibit"] == exhibit)
    return hall, booth


async def wait_ready(page: Page) -> None:
    await page.wait_for_function("() => document.body.dataset.hall", timeout=SCENE_TIMEOUT)
    state = await page.evaluate("() => window.hall")
    assert state["state"] == "ready" and await page.evaluate("document.body.dataset.hall") == "ready", state


async def test_hall_page_shows_booths_and_loads_a_model(serve: Serve, browser: Browser) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    base = f"http://127.0.0.1:{client.port}"
    model = await upload_model(client, HYDROGEN)
    levels = sorted(lod["level"] for lod in model["lods"])
    assert len(levels) >= 2, f"the test wants a model with several LODs, got {levels}"
    async with asyncio.timeout(30):  # the hall lists the model's LODs once it is committed
        while not (await hall_booth(client, HYDROGEN))[1]["lods"]:
            await asyncio.sleep(0.2)
    hall, _ = await hall_booth(client, HYDROGEN)

    context = await browser.new_context(viewport=DESKTOP, timezone_id="Asia/Shanghai")
    page = await context.new_page()
    console = Console(page)
    glbs: dict[str, dict[str, str]] = {}
    page.on("response", lambda r: glbs.__setitem__(r.url, r.headers) if ".glb" in r.url else None)
    await page.goto(f"{base}/hall")
    assert await page.evaluate("() => !!document.createElement('canvas').getContext('webgl2')"), "no WebGL2"

    # The scene: every booth of the hall's JSON, each with a label.
    await wait_ready(page)
    state = await page.evaluate("() => window.hall")
    assert state["boothCount"] == len(hall["booths"]) == 6 and state["errors"] == [], state
    assert await page.locator(".booth-label").count() == len(hall["booths"])
    await page.locator("#loading").wait_for(state="hidden")
    await page.wait_for_function("() => document.querySelectorAll('#exhibit-list .exhibit').length === 6")
    await screenshot(page, "hall")
    # The hall came compressed (the page opts in) and its progress reached the whole file.
    (hall_headers,) = [h for url, h in glbs.items() if "/hall.glb" in url]
    assert hall_headers["content-encoding"] == "br" and int(hall_headers["x-file-size"]) > 10_000
    assert await page.locator("#hall-progress").evaluate("p => p.value") == 1

    # Filters: the list narrows, the other booths' labels go.
    await page.select_option("#filter-category", "energy-storage")
    await page.wait_for_function("() => document.querySelectorAll('#exhibit-list .exhibit').length === 2")
    assert await page.locator(".booth-label[hidden]").count() == 4
    assert "2 of 6" in await page.inner_text("#list-count")
    await page.fill("#filter-q", "梯次")  # Chinese text search, through the API's q
    await page.wait_for_function("() => document.querySelectorAll('#exhibit-list .exhibit').length === 1")
    assert await page.get_attribute("#exhibit-list .exhibit", "data-exhibit") == "fr-storage-01"
    await page.click("#filters .clear")
    await page.wait_for_function("() => document.querySelectorAll('#exhibit-list .exhibit').length === 6")
    assert await page.locator(".booth-label[hidden]").count() == 0

    # A click in the 3D view, just under a booth's label, picks that booth.
    label = await page.locator(f'.booth-label[data-exhibit="{SOLAR}"]').bounding_box()
    assert label is not None
    await page.mouse.click(label["x"] + label["width"] / 2, label["y"] + label["height"] + 12)
    await page.wait_for_function(f"() => location.hash === '#{SOLAR}'")
    await page.locator("#details", has_text="Bifacial PV for carports").wait_for()
    await page.click("#back")

    # The list: details at once, the model from its smallest LOD to its largest.
    await page.click(f'#exhibit-list [data-exhibit="{HYDROGEN}"]')
    details = page.locator("#details")
    await details.get_by_text("Fuel-cell stack for heavy trucks").wait_for()
    details_text = await details.inner_text()
    wanted = ("重卡燃料电池电堆", "Example Hydrogen Works", "Series B", "25000 hour life", "两万五千小时")
    for expected in wanted:
        assert expected in details_text, (expected, details_text)
    await page.wait_for_function(
        "([id, level]) => window.hall.loadedModels[id] === level",
        arg=[HYDROGEN, levels[0]],
        timeout=SCENE_TIMEOUT,
    )
    steps = await page.eval_on_selector_all(
        "#lod-progress li", "ls => ls.map(l => [Number(l.dataset.level), l.dataset.state])"
    )
    assert steps == [[level, "done"] for level in reversed(levels)], steps  # smallest first
    assert "LOD 0" in await page.inner_text("#lod-progress")

    # The view beacons arrived: one detail view of each exhibit opened, one model load.
    exhibitor = auth(f"exhibitor:{HYDROGEN}")
    async with asyncio.timeout(5):
        while True:
            stats = await (await client.get(f"/api/v1/exhibits/{HYDROGEN}/stats", headers=exhibitor)).json()
            if stats["model_loads"] >= 1:
                break
            await asyncio.sleep(0.1)
    assert stats["detail_views"] == 1 and stats["detail_visitors"] == 1 and stats["model_loads"] == 1, stats
    await screenshot(page, "hall-model")

    # A meeting request: the API's per-field errors, then the status link.
    form = page.locator("#meeting-form")
    await form.locator("input[name=name]").fill("Li Wei")
    await form.locator("input[name=organisation]").fill("Shenzhen Green Capital")
    await form.locator("input[name=email]").fill("not-an-address")
    await form.locator("textarea[name=message]").fill("We would like to discuss a pilot in Qianhai.")
    await form.locator(".slot-list input").fill("2020-12-07T15:00")
    await form.locator(".add-slot").click()
    await form.locator(".slot-list .slot:nth-child(2) input").fill("2020-12-08T10:30")
    await form.locator("button[type=submit]").click()
    await form.locator('[data-error-for="email"]', has_text="plausible").wait_for()
    assert await form.locator("input[name=email]").get_attribute("aria-invalid") == "true"
    await form.locator("input[name=email]").fill("li.wei@green-capital.example.cn")
    await form.locator("button[type=submit]").click()
    link = form.locator("a.status-link")
    await link.wait_for()
    status_page = await link.get_attribute("href") or ""
    assert status_page.startswith("/hall#request=")
    secret = status_page.removeprefix("/hall#request=")
    status = await (await client.get(f"/api/v1/meeting-requests/{secret}")).json()
    assert status["status"] == "pending" and status["exhibit"] == HYDROGEN, status
    assert status["slots"] == ["2020-12-07T15:00:00+08:00", "2020-12-08T10:30:00+08:00"], status
    assert await form.locator("[aria-invalid]").count() == 0

    # The requester's link opens the hall page on the request's status; once the exhibitor
    # accepts a slot, the same link shows it.
    status_view = await context.new_page()
    await status_view.goto(str(client.make_url(status_page)))
    await status_view.locator("#request-status [data-status=pending]").wait_for()
    owner = auth(f"exhibitor:{HYDROGEN}")
    listed = await (await client.get(f"/api/v1/exhibits/{HYDROGEN}/meeting-requests", headers=owner)).json()
    request_id = listed["meeting_requests"][0]["id"]
    accepted = await client.post(
        f"/api/v1/exhibits/{HYDROGEN}/meeting-requests/{request_id}/accept",
        json={"slot": "2020-12-08T10:30:00+08:00"},
        headers=owner,
    )
    assert accepted.status == 200
    await status_view.reload()
    shown = status_view.locator("#request-status [data-status=accepted]")
    await shown.wait_for()
    assert "2020-12-08T10:30:00+08:00" in await status_view.locator("#request-status-body").inner_text()
    await status_view.close()

    # The only error is the one the invalid form asked for (the browser logs every 4xx).
    assert [e for e in console.errors if "status of 422" not in e] == [], console.errors
    assert len(console.errors) == 1, console.errors
    assert await page.evaluate("() => window.hall.errors") == []
    await context.close()


async def test_hall_page_on_a_phone(serve: Serve, browser: Browser) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=3, is_mobile=True, has_touch=True, timezone_id="Asia/Shanghai"
    )
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"http://127.0.0.1:{client.port}/hall")
    await wait_ready(page)
    assert await page.evaluate("() => window.hall.boothCount") == 6

    # The panel is a bottom sheet over the view; the canvas draws at most 2 pixels per CSS pixel.
    panel = await page.locator("#panel").bounding_box()
    view = await page.locator("#view").bounding_box()
    assert panel is not None and view is not None
    assert panel["y"] + panel["height"] == pytest.approx(PHONE["height"], abs=1)
    assert panel["width"] == pytest.approx(PHONE["width"], abs=1) and panel["y"] > view["y"] + 200
    ratio = await page.eval_on_selector("#view canvas", "c => c.width / c.clientWidth")
    assert ratio == pytest.approx(2, abs=0.01)

    # Tapping a booth's label opens its details in the sheet, which grows when asked.
    await page.locator(f'.booth-label[data-exhibit="{SOLAR}"]').tap()
    await page.locator("#details", has_text="Bifacial PV for carports").wait_for()
    await page.locator("#sheet-handle").tap()
    await page.wait_for_function("() => document.getElementById('panel').offsetHeight > 600")
    await screenshot(page, "hall-phone")
    assert console.errors == []
    await context.close()


async def test_hall_page_keeps_a_signed_visitor_id(serve: Serve, browser: Browser) -> None:
    """The page gets a server-signed visitor id once and keeps it; an old invented one is replaced."""
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    context = await browser.new_context(viewport=DESKTOP, timezone_id="Asia/Shanghai")
    page = await context.new_page()
    console = Console(page)
    base = f"http://127.0.0.1:{client.port}"
    # A browser that kept an id it made up itself (what the page did before ids were signed).
    await context.add_init_script(
        "if (!sessionStorage.getItem('seeded')) {"
        " localStorage.setItem('forumcast.visitor', 'made-up-visitor-0001');"
        " sessionStorage.setItem('seeded', '1'); }"
    )
    await page.goto(f"{base}/hall")
    await wait_ready(page)
    await page.click(f'#exhibit-list [data-exhibit="{SOLAR}"]')
    await page.wait_for_function("() => window.hall.visitor && window.hall.visitor.length === 38")
    signed = await page.evaluate("() => localStorage.getItem('forumcast.visitor')")
    assert signed == await page.evaluate("() => window.hall.visitor") != "made-up-visitor-0001"
    ops = auth("ops")
    async with asyncio.timeout(5):
        while (stats := await (await client.get(f"/api/v1/exhibits/{SOLAR}/stats", headers=ops)).json())[
            "detail_visitors"
        ] < 1:
            await asyncio.sleep(0.1)
    # A reload (which reopens the exhibit in the address) keeps the id: the same visitor, a second view.
    await page.reload()
    await wait_ready(page)
    async with asyncio.timeout(5):
        while (stats := await (await client.get(f"/api/v1/exhibits/{SOLAR}/stats", headers=ops)).json())[
            "detail_views"
        ] < 2:
            await asyncio.sleep(0.1)
    assert (stats["detail_views"], stats["detail_visitors"]) == (2, 1), stats
    assert await page.evaluate("() => localStorage.getItem('forumcast.visitor')") == signed
    # The one refusal is the made-up id's view (the browser logs every 4xx it fetched).
    assert [e for e in console.errors if "422" not in e] == [] and len(console.errors) == 1, console.errors
    await context.close()
