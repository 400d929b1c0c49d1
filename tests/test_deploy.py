"""The files in deploy/ stay true: the example config is complete and valid (the alert rules:
tests/deploy/test_alerts.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from server.config import Config, describe, load_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_example_config_lists_every_setting_with_its_default() -> None:
    path = DEPLOY / "forumcast.example.toml"
    assert set(tomllib.loads(path.read_text())) == {key for key, _, _ in describe()}
    assert load_config(path, env={}) == Config()
