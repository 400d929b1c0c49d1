"""The Prometheus runner: the shipped scrape config rewritten to test targets, and a real
prometheus that loads it with the shipped alert rules and scrapes itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.prometheus import SHIPPED_CONFIG, Prometheus, rewrite_config


def shipped() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    return loaded


def test_rewrite_replaces_targets_keeps_jobs_and_makes_rule_files_absolute(tmp_path: Path) -> None:
    out = rewrite_config(
        shipped(),
        {"forumcast": ["127.0.0.1:1", "127.0.0.1:2"]},
        self_address="127.0.0.1:9",
        rules_dir=SHIPPED_CONFIG.parent,
        scrape_interval="1s",
    )
    jobs = {job["job_name"]: job for job in out["scrape_configs"]}
    # "front" had no test target: dropped, so no production host name is scraped here.
    assert set(jobs) == {"forumcast", "prometheus"}
    assert jobs["forumcast"]["static_configs"] == [{"targets": ["127.0.0.1:1", "127.0.0.1:2"]}]
    assert jobs["forumcast"]["metrics_path"] == "/metrics"
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:9"]}]
    assert out["global"]["scrape_interval"] == "1s"
    assert all(Path(rule).is_absolute() and Path(rule).exists() for rule in out["rule_files"])


def test_rewrite_refuses_a_job_the_shipped_config_does_not_have() -> None:
    with pytest.raises(ValueError, match="frontend"):
        rewrite_config(shipped(), {"frontend": ["x:1"]}, self_address="x:2", rules_dir=SHIPPED_CONFIG.parent)


def test_prometheus_runs_the_shipped_config_scrapes_itself_and_loads_the_alerts(tmp_path: Path) -> None:
    with Prometheus(tmp_path, {}) as prom:
        prom.wait_for_targets("prometheus", up=1)
        assert prom.query('up{job="prometheus"}')[0]["value"][1] == "1"
        names = {rule["name"] for rule in prom.rules()}
        assert "ForumcastDown" in names, names
