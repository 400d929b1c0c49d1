"""Shared fixtures of the exhibition tests: the demo catalog and its hall layout."""

from __future__ import annotations

import pytest

from exhibits.catalog import Exhibit
from exhibits.demo_catalog import demo_catalog
from exhibits.hall import HallLayout, layout_hall


@pytest.fixture(scope="session")
def demo() -> list[Exhibit]:
    return demo_catalog()


@pytest.fixture(scope="session")
def layout(demo: list[Exhibit]) -> HallLayout:
    return layout_hall(demo)
