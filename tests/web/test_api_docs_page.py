"""The API reference page (/api/v1/docs) in a real Chromium under a strict Content-Security-Policy."""

from __future__ import annotations

from playwright.async_api import Browser, Route

from server.http.openapi_page import operations
from server.http.openapi_routes import document
from tests.conftest import Serve
from tests.web.browser import Console, screenshot

#: No script at all, styles only from our own origin, nothing from elsewhere.
STRICT = "default-src 'self'; script-src 'none'; style-src 'self'; object-src 'none'; base-uri 'none'"


async def test_docs_page_renders_under_a_strict_csp(serve: Serve, browser: Browser) -> None:
    client = await serve()
    page = await browser.new_page()
    console = Console(page)

    async def strict(route: Route) -> None:
        response = await route.fetch()
        headers = {**response.headers, "content-security-policy": STRICT}
        await route.fulfill(response=response, headers=headers)

    await page.route("**/api/v1/docs", strict)
    await page.goto(str(client.make_url("/api/v1/docs")))
    # The stylesheet applied (a POST badge is blue), and nothing was refused.
    badge = page.locator("#delayStage .method.post")
    assert await badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(43, 87, 151)"
    assert console.errors == []
    assert await page.locator("article[id]").count() == len(operations(document())) + len(
        document()["components"]["schemas"]
    )
    # A link from the table of contents reaches its operation; a schema link its schema.
    await page.click("nav a[href='#requestMeeting']")
    assert page.url.endswith("#requestMeeting")
    await page.locator("#getEvent a[href='#schema-Event']").click()
    assert await page.locator("#schema-Event").is_visible()
    await screenshot(page, "api-docs", full_page=True)
