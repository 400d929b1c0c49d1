"""The files in deploy/ stay true: the example config is complete and valid, the alert rules parse."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

from server.config import Config, describe, load_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_example_config_lists_every_setting_with_its_default() -> None:
    path = DEPLOY / "forumcast.example.toml"
    assert set(tomllib.loads(path.read_text())) == {key for key, _, _ in describe()}
    assert load_config(path, env={}) == Config()


def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's 'prometheus' package (the test command does)"
    result = subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "prometheus" / "forumcast-alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_alert_rules_unit_tests_pass() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's 'prometheus' package (the test command does)"
    result = subprocess.run(
        [promtool, "test", "rules", "forumcast-alerts.test.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
