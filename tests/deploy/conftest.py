"""The deploy tests: the files in deploy/ checked, and the topology they describe run."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "topology: the compose topology from real processes (redis, three instances, nginx front, mtail, "
        "Prometheus); `pytest -m topology`",
    )
