"""The Grafana dashboards: what deploy/grafana/build_dashboards.py writes is what is committed,
each file holds together as Grafana's dashboard JSON model, and every metric a panel, an
annotation or an alert rule names is one that forumcast (or the front's mtail, or Prometheus
itself) really exports."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import Serve
from tests.support.metrics_text import families
from tests.support.promql import PROMETHEUS_OWN, front_metrics, metric_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "forumcast-prometheus"}
PANEL_TYPES = {"timeseries", "stat", "state-timeline", "table", "bargauge", "gauge", "text"}
NAMES = {"event", "relay", "hls", "exhibition", "platform"}


def build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", DEPLOY / "grafana" / "build_dashboards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def queries(model: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard: panel targets and annotation queries."""
    exprs = [t["expr"] for p in model["panels"] for t in p["targets"]]
    exprs += [a["expr"] for a in model["annotations"]["list"] if a.get("datasource") == DATASOURCE]
    return exprs


def test_committed_dashboards_are_what_the_script_writes() -> None:
    built = build_script().build()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in DASHBOARDS.glob("*.json")}
    assert set(built) == {f"{name}.json" for name in NAMES}
    assert on_disk == built, "run: python deploy/grafana/build_dashboards.py"


def test_dashboards_hold_together_as_grafana_models() -> None:
    found = dashboards()
    assert set(found) == NAMES
    uids = [model["uid"] for model in found.values()]
    assert len(set(uids)) == len(uids)
    for name, model in found.items():
        assert model["uid"] and len(model["uid"]) <= 40, name  # Grafana's uid limit
        assert model["title"], name
        assert isinstance(model["schemaVersion"], int) and model["schemaVersion"] >= 36, name
        panels = model["panels"]
        assert panels, name
        ids = [p["id"] for p in panels]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
        cells: set[tuple[int, int]] = set()
        for panel in panels:
            where = f"{name} panel {panel.get('id')}"
            assert isinstance(panel["id"], int) and panel["title"], where
            assert panel["type"] in PANEL_TYPES, where
            grid = panel["gridPos"]
            assert all(isinstance(grid[k], int) for k in ("x", "y", "w", "h")), where
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
            covered = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not covered & cells, f"{where} overlaps another panel"
            cells |= covered
            assert panel["datasource"] == DATASOURCE, where
            assert panel["targets"], where
            refs = [t["refId"] for t in panel["targets"]]
            assert len(set(refs)) == len(refs), where
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE and target["expr"].strip(), where
        for variable in model["templating"]["list"]:
            assert variable["datasource"] == DATASOURCE and variable["name"], name
            assert variable["query"]["query"].startswith("label_values("), name
        used = {v["name"] for v in model["templating"]["list"]}
        for expr in queries(model):
            for var in ("stage", "input", "instance"):
                if f"${var}" in expr:
                    assert var in used, f"{name}: ${var} without a variable"


def test_switches_and_failovers_are_annotations_of_the_event_dashboard() -> None:
    exprs = [a.get("expr", "") for a in dashboards()["event"]["annotations"]["list"]]
    assert any('reason="failover"' in e and "forumcast_program_switches_total" in e for e in exprs)
    assert any('reason!="failover"' in e for e in exprs)


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'sum by (stage) (rate(a_total{x="y{z}"}[5m])) / on (stage) group_left max(b{c=~"d"}) '
        "and histogram_quantile(0.9, sum by (le) (rate(c_bucket[$__rate_interval]))) or vector(0) offset 1m"
    )
    assert metric_names(expr) == {"a_total", "b", "c_bucket"}
    assert metric_names("up == 0") == {"up"}


@pytest.fixture
async def exported(serve: Serve) -> set[str]:
    """Every name a real forumcast's /metrics declares (the app as tests run it; names do not
    depend on Redis: every metric is declared at start, with or without samples)."""
    client = await serve()
    text = await (await client.get("/metrics")).text()
    return families(text)


def alert_exprs() -> list[str]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "forumcast-alerts.yml").read_text(encoding="utf-8"))
    return [rule["expr"] for group in groups["groups"] for rule in group["rules"]]


async def test_every_metric_a_panel_or_an_alert_names_is_exported(exported: set[str]) -> None:
    assert "forumcast_front_requests_total" in front_metrics()
    known = exported | front_metrics() | PROMETHEUS_OWN
    unknown = {}
    for name, model in dashboards().items():
        for expr in queries(model):
            if missing := metric_names(expr) - known:
                unknown[f"{name}: {expr}"] = missing
    for expr in alert_exprs():
        if missing := metric_names(expr) - known:
            unknown[f"alert: {expr}"] = missing
    assert not unknown, unknown
    # what the panels need that this change added is there for real, not only declared
    for name in ("forumcast_input_keyframe_interval_seconds", "forumcast_event_loop_lag_seconds"):
        assert name in exported
