"""The ``browser`` fixture of the page tests (see ``tests/web/browser.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.web.browser import launch


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async for opened in launch():
        yield opened
