"""The pages under their Content-Security-Policy, in a real Chromium against the real server.

Markup written into every field users can write (the event file's titles and speakers, the
catalog's titles, summaries and organisations, a meeting request and its decline reason, an
input id that comes back in an error) is shown as text on every page: nothing of it becomes
an element or runs. The viewer and speaker pages take tokens and stream keys out of the
address bar. The policy itself is enforced: markup that does get into the DOM cannot run,
and the browser reports it, which is what the page tests' console checks rely on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from playwright.async_api import Browser, Page

from server.clock import ManualClock
from server.http.keys import STREAM_KEYS
from server.schedule.yaml_format import load_yaml
from tests.conftest import FIXTURES, Serve, at, auth
from tests.web.browser import Console

MORNING = "2020-12-06T10:15:00+08:00"
IMG = "<img src=x onerror=window.__xss=1>"
SCRIPT = "<script>window.__xss=1</script>"
EXHIBIT = "cn-hydrogen-01"


def hostile_event(folder: Path) -> Path:
    """The fixture event with markup in its titles, speakers and input titles."""
    document = yaml.safe_load((FIXTURES / "event.yaml").read_text(encoding="utf-8"))
    document["event"]["title"] = {"zh": SCRIPT, "en": f"Forum {IMG}"}
    for stage in document["stages"]:
        stage["title"] = {"zh": SCRIPT, "en": f"{stage['title']['en']} {IMG}"}
        for put in stage.get("inputs", []):
            put["title"] = f"{put['title']} {IMG}"
    for session in document["sessions"]:
        session["title"] = {"zh": SCRIPT, "en": f"{session['title']['en']} {IMG}"}
        for speaker in session.get("speakers", []):
            speaker["name"] = f"{speaker['name']} {IMG}"
            speaker["affiliation"] = SCRIPT
    path = folder / "event.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def hostile_catalog(folder: Path) -> Path:
    document = yaml.safe_load((FIXTURES / "exhibits.yaml").read_text(encoding="utf-8"))
    for exhibit in document["exhibits"]:
        exhibit["title"] = {"en": f"{exhibit['title']['en']} {IMG}", "zh": SCRIPT}
        exhibit["summary"] = {"en": f"Summary {IMG}", "zh": SCRIPT}
        exhibit["organisation"] = f"Org {SCRIPT}"
    path = folder / "exhibits.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


async def assert_inert(page: Page, console: Console, *, shown: tuple[str, ...] = (IMG, SCRIPT)) -> None:
    """Nothing of the markup ran or became an element, it is on the page as text, and the
    policy had nothing to refuse (the pages never tried to run it)."""
    found = await page.evaluate(
        """() => ({
            xss: window.__xss,
            images: document.querySelectorAll('img[src="x"], [onerror]').length,
            scripts: [...document.scripts].filter((s) => s.textContent.includes("__xss")).length,
            text: document.body.textContent,
        })"""
    )
    assert found["xss"] is None and found["images"] == 0 and found["scripts"] == 0, found
    for markup in shown:
        assert markup in found["text"], (markup, found["text"][:2000])
    assert console.violations == [] and console.errors == [], console.errors


async def test_markup_in_every_field_stays_text(serve: Serve, browser: Browser, tmp_path: Path) -> None:
    event = load_yaml(hostile_event(tmp_path))
    client = await serve(
        event=event, clock=ManualClock(at(MORNING), rate=1.0), catalog=str(hostile_catalog(tmp_path))
    )
    base = f"http://127.0.0.1:{client.port}"
    context = await browser.new_context()
    owner = auth(f"exhibitor:{EXHIBIT}")

    # A meeting request written in markup, declined with a reason written in markup.
    created = await client.post(
        f"/api/v1/exhibits/{EXHIBIT}/meeting-requests",
        json={
            "name": f"Li {IMG}",
            "organisation": SCRIPT,
            "email": "li@example.org",
            "message": f"Hello {IMG} {SCRIPT}",
            "slots": ["2020-12-07T15:00:00+08:00"],
        },
    )
    assert created.status == 201, await created.text()
    request: dict[str, Any] = await created.json()
    declined = await client.post(
        f"/api/v1/exhibits/{EXHIBIT}/meeting-requests/{request['id']}/decline",
        json={"reason": f"Busy {IMG} {SCRIPT}"},
        headers=owner,
    )
    assert declined.status == 200, await declined.text()

    # The viewer: the event's title, the stages, the sessions and their speakers.
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"{base}/#main")
    await page.locator("#sessions li").first.wait_for()
    await page.locator("#sessions", has_text="Nicholas Stern").wait_for()
    await assert_inert(page, console)

    # The hall: the list, an exhibit's details, and the requester's status page.
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"{base}/hall#{EXHIBIT}")
    await page.locator("#details", has_text="Summary").wait_for()
    await page.locator("#exhibit-list li").first.wait_for(state="attached")
    await assert_inert(page, console)
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"{base}{request['status_page']}")
    await page.locator("#request-status [data-status=declined]").wait_for()
    body = await page.locator("#request-status-body").text_content() or ""
    assert f"Busy {IMG} {SCRIPT}" in body, body
    await assert_inert(page, console)

    # The producer console: stage titles, input titles, upcoming sessions.
    page = await context.new_page()
    console = Console(page)
    token = auth("producer", stage="main")["Authorization"].removeprefix("Bearer ")
    await page.goto(f"{base}/producer?token={token}")
    await page.locator("#inputs", has_text="Main camera").wait_for()
    await page.locator("#upcoming li").first.wait_for()
    await assert_inert(page, console)

    # The speaker page: an input id in markup comes back in the server's refusal as text.
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"{base}/speaker")
    await page.fill("#input-id", IMG)
    await page.fill("#stream-key", "no-such-key")
    await page.click("#go-live")
    await page.wait_for_function("() => document.getElementById('error').textContent")
    shown = await page.locator("#error").text_content() or ""
    # The refused socket and the probe that asks why (the browser logs every 4xx).
    console.errors = [e for e in console.errors if "WebSocket" not in e and "status of 404" not in e]
    assert IMG in shown, shown
    await assert_inert(page, console, shown=(IMG,))
    await context.close()


async def test_tokens_and_keys_leave_the_address_bar(serve: Serve, browser: Browser) -> None:
    client = await serve(clock=ManualClock(at(MORNING), rate=1.0))
    base = f"http://127.0.0.1:{client.port}"
    context = await browser.new_context()

    # The viewer keeps the invitation for the tab (the closed stage still opens after a reload).
    invitation = auth("viewer:closed")["Authorization"].removeprefix("Bearer ")
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"{base}/?token={invitation}&lang=en#closed")
    await page.locator('[data-session="secret"]').wait_for()
    assert await page.evaluate("() => location.search + location.hash") == "?lang=en#closed"
    await page.reload()
    await page.locator('[data-session="secret"]').wait_for()
    assert invitation not in await page.evaluate("() => location.href")
    assert console.errors == []

    # The speaker page keeps the input and the key (in its field), not the key in the URL.
    key = client.app[STREAM_KEYS].key("stern-uk")
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"{base}/speaker?input=stern-uk&key={key}&token={invitation}")
    await page.wait_for_function("() => !location.search.includes('key=')")
    assert await page.evaluate("() => location.search") == "?input=stern-uk"
    assert await page.input_value("#stream-key") == key
    await page.reload()
    assert await page.input_value("#stream-key") == key and await page.input_value("#input-id") == "stern-uk"
    assert console.errors == []
    await context.close()


async def test_the_policy_refuses_injected_markup_and_says_so(serve: Serve, browser: Browser) -> None:
    """Were a page to write markup, its handlers and scripts would not run, and the refusal
    reaches the console collector every page test checks."""
    client = await serve()
    page = await browser.new_page()
    console = Console(page)
    await page.goto(f"http://127.0.0.1:{client.port}/")
    await page.evaluate(
        "(markup) => document.body.insertAdjacentHTML('beforeend', markup)",
        '<img src="data:," onerror="window.__xss=1"><a id="js" href="javascript:window.__xss=1">x</a>',
    )
    await page.click("#js")
    async with asyncio.timeout(5):
        while len(console.violations) < 2:  # the handler and the javascript: link
            await asyncio.sleep(0.05)
    assert await page.evaluate("() => window.__xss") is None
    await page.close()
