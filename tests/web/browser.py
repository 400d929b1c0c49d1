"""Headless Chromium for the page tests: the system's browser (never downloaded), its flags,
a collector of console errors, and optional screenshots (``FORUMCAST_SCREENSHOTS=DIR``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--enable-unsafe-swiftshader",  # WebGL on the CPU: headless test machines have no GPU
]
#: Set to a folder to keep a screenshot of each page there.
SCREENSHOTS = os.environ.get("FORUMCAST_SCREENSHOTS")


async def launch() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `apt-get install chromium` (never downloaded)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class Console:
    """Every console error and uncaught exception of a page, CSP refusals among them."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    @property
    def violations(self) -> list[str]:
        """What the page's Content-Security-Policy refused (Chromium logs each as an error)."""
        return [e for e in self.errors if "Content Security Policy" in e]


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"forumcast-{name}.png"), full_page=full_page)
