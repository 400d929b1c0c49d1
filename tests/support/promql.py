"""What the dashboards and alert rules query: the metric names in PromQL expressions, and the
names that come from outside forumcast's own ``/metrics``.

:func:`metric_names` is a small reader, not a PromQL parser: it drops strings, label
matchers, ranges and grouping clauses, and keeps every identifier that is not a function,
an aggregation or a keyword. Anything it cannot place counts as a metric name, so a typo in
a query shows up as a metric nobody exports.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MTAIL_PROGRAM = ROOT / "deploy" / "mtail" / "front.mtail"

#: Written by Prometheus itself for every target.
PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds", "ALERTS"})

_WORDS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "changes",
        "resets",
        "predict_linear",
        "histogram_quantile",
        "vector",
        "scalar",
        "abs",
        "absent",
        "absent_over_time",
        "ceil",
        "floor",
        "round",
        "clamp",
        "clamp_min",
        "clamp_max",
        "exp",
        "ln",
        "log2",
        "log10",
        "sqrt",
        "sort",
        "sort_desc",
        "time",
        "timestamp",
        "label_replace",
        "label_join",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
        "quantile_over_time",
        "stddev_over_time",
        "present_over_time",
        "inf",
        "nan",
    ]
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _WORDS:
            continue
        names.add(word)
    return names


def front_metrics() -> frozenset[str]:
    """What the front's mtail program exports, read from deploy/mtail/front.mtail
    (``counter``/``gauge``/``histogram`` declarations)."""
    names: set[str] = set()
    for line in MTAIL_PROGRAM.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*(counter|gauge|histogram)\s+([a-zA-Z_][a-zA-Z0-9_]*)", line)
        if match is None:
            continue
        kind, name = match.groups()
        names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
    return frozenset(names)
