"""The alert rules: promtool checks them and runs their unit tests, every alert of the ops
contract is there with its runbook link, summary and severity, and every one has a unit test
in which it fires on one series and stays silent on a neighbouring one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.promql import metric_names

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS / "forumcast-alerts.yml"
UNIT_TESTS = PROMETHEUS / "forumcast-alerts.test.yml"

#: The alert names ops work with (deploy/README.md has a runbook section for each).
ALERTS = {
    "ForumcastDown",
    "ForumcastInputDown",
    "ForumcastSlateDuringSession",
    "ForumcastProgramFailover",
    "ForumcastViewersDropped",
    "ForumcastRelayDrops",
    "ForumcastHlsUnavailable",
    "ForumcastRedisUnreachable",
    "ForumcastLeaderChurn",
    "ForumcastEventLoopLag",
    "ForumcastIngestFailures",
    "ForumcastSchedulerLagging",
    "ForumcastStoreErrors",
    "ForumcastHttp5xx",
    "ForumcastStageNotLive",
    "ForumcastTaskFailing",
    "ForumcastTaskDown",
}
#: Labels that tell one instance, stage, input or task's series from another's.
IDENTITY = ("instance", "stage", "input", "task")


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: install Debian's 'prometheus' package (the test command does)"
    return found


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_alert_unit_tests_pass() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", UNIT_TESTS.name],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests can fail: slate for 30 s made 5 minutes is caught."""
    text = RULES.read_text(encoding="utf-8")
    at = text.index("alert: ForumcastSlateDuringSession")
    broken = text[:at] + text[at:].replace("for: 30s", "for: 5m", 1)
    assert broken != text
    (tmp_path / RULES.name).write_text(broken, encoding="utf-8")
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    result = subprocess.run(
        [promtool(), "test", "rules", UNIT_TESTS.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "ForumcastSlateDuringSession" in result.stdout + result.stderr


def test_every_alert_has_its_runbook_summary_and_severity() -> None:
    found = {rule["alert"]: rule for rule in rules()}
    assert set(found) == ALERTS
    for name, rule in found.items():
        annotations = rule.get("annotations", {})
        assert annotations.get("runbook_url") == f"deploy/README.md#alert-{name.lower()}", name
        assert annotations.get("summary"), name
        assert rule.get("labels", {}).get("severity") in {"page", "warning", "info"}, name
        assert metric_names(rule["expr"]), name


def test_slate_during_a_session_alerts_after_30_seconds() -> None:
    rule = next(r for r in rules() if r["alert"] == "ForumcastSlateDuringSession")
    assert rule["for"] == "30s"


def _labels(series: str) -> dict[str, str]:
    inside = series[series.index("{") + 1 : series.rindex("}")]
    pairs = (item.split("=", 1) for item in inside.split('",') if item.strip())
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


def test_every_alert_fires_on_one_series_and_not_on_its_neighbour() -> None:
    tests = yaml.safe_load(UNIT_TESTS.read_text(encoding="utf-8"))["tests"]
    fires: dict[str, bool] = {}
    for test in tests:
        series = [_labels(s["series"]) for s in test["input_series"]]
        for case in test.get("alert_rule_test", []):
            expected = case["exp_alerts"]
            if not expected:
                continue
            firing = [alert["exp_labels"] for alert in expected]
            # a series of the same test that is none of the firing ones: it must stay silent
            quiet = [
                s
                for s in series
                if not any(all(s.get(k) == f.get(k) for k in IDENTITY if k in f) for f in firing)
            ]
            fires[case["alertname"]] = fires.get(case["alertname"], False) or bool(quiet)
    assert fires == dict.fromkeys(ALERTS, True), {a for a in ALERTS if not fires.get(a)}
