# ruff: noqa: E501 - PromQL queries and panel texts read best unbroken
"""The forumcast Grafana dashboards, written as data: ``python deploy/grafana/build_dashboards.py``
rewrites ``deploy/grafana/dashboards/*.json`` (Grafana's dashboard JSON model, provisioned by
``deploy/grafana/provisioning/dashboards/``). Edit the panels here, run it, commit both;
tests/deploy/test_dashboards.py checks that the committed JSON is what this script writes,
that the JSON holds together, and that every query names metrics forumcast really exports.

Five dashboards: *event* (what the audience gets), *relay* (inputs and WebSocket delivery),
*hls* (LL-HLS origin and the caching front), *exhibition* (the 3D hall) and *platform*
(instances, leaders, Redis, the event loop, the process).

Conventions of the queries: every instance exports its own series, so per-stage and
per-input panels sum (counts) or take the maximum (gauges only the publisher's instance or
the leader sets); ``$__rate_interval`` is Grafana's own; ``$stage``, ``$input`` and
``$instance`` are the dashboards' variables (multi-value, regex-matched).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "forumcast-prometheus"}
SCHEMA_VERSION = 39
#: Panels per row and the height of one, in Grafana's 24-column grid.
WIDTH, HEIGHT = 12, 8
RATE = "$__rate_interval"
CACHEABLE = "playlist|part|segment|init|model"
HLS_ROUTES = "/live/.*"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat", "state-timeline"
    description: str = ""
    width: int = WIDTH
    options: dict[str, Any] = field(default_factory=dict)


def panel(title: str, *queries: Query | str, **kwargs: Any) -> Panel:
    return Panel(title, tuple(q if isinstance(q, Query) else Query(q) for q in queries), **kwargs)


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"var-{name}"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


STAGE = variable("stage", "Stage", "label_values(forumcast_stage_live, stage)")
INPUT = variable("input", "Input", "label_values(forumcast_input_up, input)")
INSTANCE = variable("instance", "Instance", 'label_values(up{job="forumcast"}, instance)')


def annotation(name: str, expr: str, colour: str, title: str) -> dict[str, Any]:
    return {
        "name": name,
        "datasource": DATASOURCE,
        "enable": True,
        "iconColor": colour,
        "expr": expr,
        "step": "15s",
        "titleFormat": title,
        "textFormat": "{{stage}}: {{reason}}",
        "tagKeys": "stage,reason",
        "useValueForTime": False,
    }


GRAFANA_BUILTIN = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}
SWITCHES = annotation(
    "Program switches",
    'sum by (stage, reason) (increase(forumcast_program_switches_total{reason!="failover"}[1m])) > 0',
    "blue",
    "switch",
)
FAILOVERS = annotation(
    "Failovers",
    'sum by (stage, reason) (increase(forumcast_program_switches_total{reason="failover"}[1m])) > 0',
    "red",
    "failover",
)


def panel_json(number: int, item: Panel, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": q.expr,
            "legendFormat": q.legend or "__auto",
            "range": True,
        }
        for i, q in enumerate(item.queries)
    ]
    out: dict[str, Any] = {
        "id": number,
        "type": item.kind,
        "title": item.title,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": item.width, "h": HEIGHT},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": item.unit}, "overrides": []},
        "options": item.options,
    }
    if item.description:
        out["description"] = item.description
    return out


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: Iterable[Panel],
    *,
    variables: Iterable[dict[str, Any]] = (),
    annotations: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    laid_out, x, y = [], 0, 0
    for number, item in enumerate(panels, start=1):
        if x + item.width > 24:
            x, y = 0, y + HEIGHT
        laid_out.append(panel_json(number, item, x, y))
        x += item.width
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["forumcast"],
        "timezone": "browser",
        "editable": False,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-3h", "to": "now"},
        "graphTooltip": 1,
        "links": [{"title": "forumcast", "type": "dashboards", "tags": ["forumcast"], "asDropdown": True}],
        "templating": {"list": list(variables)},
        "annotations": {"list": [GRAFANA_BUILTIN, *annotations]},
        "panels": laid_out,
    }


def event() -> dict[str, Any]:
    leader_source = (
        'max by (stage, source) (forumcast_program_source{stage=~"$stage"} == 1'
        " and on (instance, stage) forumcast_stage_leader == 1)"
    )
    return dashboard(
        "forumcast-event",
        "forumcast · Event",
        "Every stage: is a session on, what its program shows, who watches. Switches and failovers are annotations.",
        [
            panel(
                "Stage live (a session is running)",
                Query('max by (stage) (forumcast_stage_live{stage=~"$stage"})', "{{stage}}"),
                kind="state-timeline",
                options={"mergeValues": True, "showValue": "never"},
            ),
            panel(
                "Session on each stage",
                Query(
                    'max by (stage, session, title) (forumcast_stage_session{stage=~"$stage"})',
                    "{{stage}}: {{title}}",
                ),
                kind="state-timeline",
                description="The session running on each stage (its id and title); gaps are breaks.",
                options={"mergeValues": True, "showValue": "never"},
            ),
            panel(
                "Program source (as the stage's leader shows it)",
                Query(leader_source, "{{stage}}: {{source}}"),
                kind="state-timeline",
                description="1 while the source is on the program. 'slate' during a session means its inputs are down.",
                options={"mergeValues": True, "showValue": "never"},
            ),
            panel(
                "Viewers per stage and protocol (all instances)",
                Query(
                    'sum by (stage, protocol) (forumcast_viewers{stage=~"$stage"})', "{{stage}} {{protocol}}"
                ),
            ),
            panel(
                "Viewers in total",
                Query("sum(forumcast_viewers)", "viewers"),
                kind="stat",
                options={"reduceOptions": {"calcs": ["lastNotNull"]}, "graphMode": "area"},
            ),
            panel(
                "Program switches by reason",
                Query(
                    f'sum by (stage, reason) (increase(forumcast_program_switches_total{{stage=~"$stage"}}[{RATE}]))',
                    "{{stage}} {{reason}}",
                ),
            ),
            panel(
                "Inputs up / expected by the live session",
                Query('max by (input) (forumcast_input_up{input=~"$input"})', "{{input}} up"),
                Query('max by (input) (forumcast_input_expected{input=~"$input"})', "{{input}} expected"),
                kind="state-timeline",
                options={"mergeValues": True, "showValue": "never"},
            ),
            panel(
                "Schedule delays applied",
                Query(
                    f'sum by (stage) (increase(forumcast_schedule_delays_total{{stage=~"$stage"}}[{RATE}]))',
                    "{{stage}}",
                ),
            ),
        ],
        variables=[STAGE, INPUT],
        annotations=[SWITCHES, FAILOVERS],
    )


def relay() -> dict[str, Any]:
    ttff = f'sum by (le) (rate(forumcast_viewer_ttff_seconds_bucket{{protocol="ws"}}[{RATE}]))'
    return dashboard(
        "forumcast-relay",
        "forumcast · Relay",
        "The inputs (bitrate, keyframe interval, fragment age, reconnects) and the WebSocket delivery "
        "(drops, viewers behind, time to first frame).",
        [
            panel(
                "Input bitrate",
                Query('max by (input) (forumcast_input_bytes_per_second{input=~"$input"}) * 8', "{{input}}"),
                unit="bps",
            ),
            panel(
                "Input keyframe interval",
                Query(
                    'max by (input) (forumcast_input_keyframe_interval_seconds{input=~"$input"})', "{{input}}"
                ),
                unit="s",
                description="Seconds between the last two video keyframes: late joiners and switches wait up to this.",
            ),
            panel(
                "Fragment age (since the input's last fragment)",
                Query('max by (input) (forumcast_input_fragment_age_seconds{input=~"$input"})', "{{input}}"),
                unit="s",
            ),
            panel(
                "Publisher connects (reconnects)",
                Query(
                    f'sum by (input) (increase(forumcast_publisher_connects_total{{input=~"$input"}}[{RATE}]))',
                    "{{input}}",
                ),
            ),
            panel(
                "Fragments received per second",
                Query(
                    f'sum by (input) (rate(forumcast_relay_fragments_total{{input=~"$input"}}[{RATE}]))',
                    "{{input}}",
                ),
            ),
            panel(
                "Fragments dropped to slow viewers per second",
                Query(
                    f'sum by (stage) (rate(forumcast_relay_dropped_fragments_total{{stage=~"$stage"}}[{RATE}]))',
                    "{{stage}}",
                ),
            ),
            panel(
                "Viewers behind the live edge",
                Query('sum by (stage) (forumcast_viewers_behind{stage=~"$stage"})', "{{stage}}"),
            ),
            panel(
                "Stalled viewers reset",
                Query(
                    f'sum by (stage) (increase(forumcast_relay_stalled_viewers_total{{stage=~"$stage"}}[{RATE}]))',
                    "{{stage}}",
                ),
            ),
            panel(
                "WebSocket time to first frame",
                Query(f"histogram_quantile(0.5, {ttff})", "p50"),
                Query(f"histogram_quantile(0.95, {ttff})", "p95"),
                unit="s",
                description="From the viewer's WebSocket upgrade to the first media fragment sent to it.",
            ),
        ],
        variables=[STAGE, INPUT],
        annotations=[FAILOVERS],
    )


def hls() -> dict[str, Any]:
    hls_rate = f'rate(forumcast_http_requests_total{{route=~"{HLS_ROUTES}"}}[{RATE}])'
    playlist_503 = f'rate(forumcast_http_requests_total{{route=~"/live/.*m3u8",status="503"}}[{RATE}])'
    playlists = f'rate(forumcast_http_requests_total{{route=~"/live/.*m3u8"}}[{RATE}])'
    reload = f'sum by (le, stage) (rate(forumcast_hls_reload_wait_seconds_bucket{{stage=~"$stage"}}[{RATE}]))'
    front = f"rate(forumcast_front_requests_total[{RATE}])"
    hits = f'sum by (kind) (rate(forumcast_front_requests_total{{cache="HIT",kind=~"{CACHEABLE}"}}[{RATE}]))'
    cacheable = f'sum by (kind) (rate(forumcast_front_requests_total{{kind=~"{CACHEABLE}"}}[{RATE}]))'
    return dashboard(
        "forumcast-hls",
        "forumcast · LL-HLS",
        "LL-HLS at the origin (requests, 503s, blocking reloads, playlist renders, clients) and at the "
        "caching front (hit ratio, latency).",
        [
            panel(
                "Origin LL-HLS requests by route",
                Query(f"sum by (route) ({hls_rate})", "{{route}}"),
                unit="reqps",
            ),
            panel(
                "Origin LL-HLS responses by status",
                Query(f"sum by (status) ({hls_rate})", "{{status}}"),
                unit="reqps",
            ),
            panel(
                "Playlist 503 ratio",
                Query(f"(sum({playlist_503}) or vector(0)) / sum({playlists})", "503 share"),
                unit="percentunit",
                kind="stat",
                options={"reduceOptions": {"calcs": ["lastNotNull"]}, "graphMode": "area"},
            ),
            panel(
                "Blocking reload waits",
                Query(f"histogram_quantile(0.5, {reload})", "{{stage}} p50"),
                Query(f"histogram_quantile(0.95, {reload})", "{{stage}} p95"),
                unit="s",
            ),
            panel(
                "Playlist renders per second",
                Query(
                    f'sum by (stage) (rate(forumcast_hls_playlist_renders_total{{stage=~"$stage"}}[{RATE}]))',
                    "{{stage}}",
                ),
                description="One render serves every request waiting for the same part.",
            ),
            panel(
                "Requests waiting on a blocking reload",
                Query('sum by (stage) (forumcast_hls_waiting_requests{stage=~"$stage"})', "{{stage}}"),
            ),
            panel(
                "HLS viewers (our players' heartbeats) and distinct clients (origin estimate)",
                Query(
                    'sum by (stage) (forumcast_viewers{protocol="hls",stage=~"$stage"})', "{{stage}} viewers"
                ),
                Query('max by (stage) (forumcast_hls_clients{stage=~"$stage"})', "{{stage}} clients"),
            ),
            panel(
                "Origin LL-HLS latency p95 by route",
                Query(
                    "histogram_quantile(0.95, sum by (le, route) "
                    f'(rate(forumcast_http_request_duration_seconds_bucket{{route=~"{HLS_ROUTES}"}}[{RATE}])))',
                    "{{route}}",
                ),
                unit="s",
            ),
            panel(
                "Front cache hit ratio by kind",
                Query(f"{hits} / {cacheable}", "{{kind}}"),
                unit="percentunit",
                description="From the nginx front's access log (mtail): HIT over all requests of cacheable kinds.",
            ),
            panel(
                "Front requests by kind and cache status",
                Query(f"sum by (kind, cache) ({front})", "{{kind}} {{cache}}"),
                unit="reqps",
            ),
            panel(
                "Front latency p95 by kind",
                Query(
                    "histogram_quantile(0.95, sum by (le, kind) "
                    f"(rate(forumcast_front_request_seconds_bucket[{RATE}])))",
                    "{{kind}}",
                ),
                unit="s",
            ),
        ],
        variables=[STAGE],
    )


def exhibition() -> dict[str, Any]:
    ingest = f"sum by (le) (rate(forumcast_ingest_duration_seconds_bucket[{RATE}]))"
    return dashboard(
        "forumcast-exhibition",
        "forumcast · Exhibition",
        "The 3D hall: model loads, detail views, new visitors, meeting requests, model ingest.",
        [
            panel(
                "Model loads by exhibit",
                Query(
                    f"sum by (exhibit) (increase(forumcast_exhibit_model_loads_total[{RATE}]))", "{{exhibit}}"
                ),
            ),
            panel(
                "Detail views by exhibit",
                Query(f"sum by (exhibit) (increase(forumcast_exhibit_views_total[{RATE}]))", "{{exhibit}}"),
            ),
            panel(
                "New visitors (visitor ids handed out)",
                Query(
                    "sum(increase(forumcast_http_requests_total"
                    f'{{route="/api/v1/visitors",method="POST",status="201"}}[{RATE}]))',
                    "new visitors",
                ),
                description="Each browser asks for one visitor id once: new ids are new visitors. Unique "
                "visitors per exhibit are in the exhibitor's stats (GET /api/v1/exhibits/{id}/stats).",
            ),
            panel(
                "Meeting requests",
                Query(f"sum(increase(forumcast_meeting_requests_total[{RATE}]))", "requests"),
            ),
            panel(
                "Ingest jobs by outcome",
                Query(f"sum by (outcome) (increase(forumcast_ingest_jobs_total[{RATE}]))", "{{outcome}}"),
            ),
            panel(
                "Ingest duration",
                Query(f"histogram_quantile(0.5, {ingest})", "p50"),
                Query(f"histogram_quantile(0.95, {ingest})", "p95"),
                unit="s",
            ),
            panel(
                "Ingest worker pool restarts",
                Query(f"sum(increase(forumcast_ingest_pool_restarts_total[{RATE}]))", "restarts"),
            ),
        ],
    )


def platform() -> dict[str, Any]:
    mine = 'job="forumcast",instance=~"$instance"'
    return dashboard(
        "forumcast-platform",
        "forumcast · Platform",
        "Instances, the leader of each stage and its epoch, Redis, the event loop, CPU, memory, files.",
        [
            panel("Instances up (scraped)", Query(f"up{{{mine}}}", "{{instance}}"), kind="state-timeline"),
            panel(
                "Live instances (as the cluster registry counts them)",
                Query('max(forumcast_cluster_instances{job="forumcast"})', "instances"),
                kind="stat",
                options={"reduceOptions": {"calcs": ["lastNotNull"]}, "graphMode": "area"},
            ),
            panel(
                "Leader per stage",
                Query('forumcast_stage_leader{stage=~"$stage"} == 1', "{{stage}}: {{instance}}"),
                kind="state-timeline",
                options={"mergeValues": True, "showValue": "never"},
            ),
            panel(
                "Leader epoch per stage",
                Query('max by (stage) (forumcast_stage_leader_epoch{stage=~"$stage"})', "{{stage}}"),
                description="Each new leader term raises the stage's epoch by one.",
            ),
            panel(
                "Leader changes",
                Query(
                    f'sum by (stage) (increase(forumcast_leader_changes_total{{stage=~"$stage"}}[{RATE}]))',
                    "{{stage}}",
                ),
            ),
            panel("Redis up", Query(f"forumcast_redis_up{{{mine}}}", "{{instance}}"), kind="state-timeline"),
            panel(
                "Redis stream lag per edge",
                Query(
                    f'max by (instance, stage) (forumcast_redis_stream_lag_seconds{{{mine},stage=~"$stage"}})',
                    "{{instance}} {{stage}}",
                ),
                unit="s",
                description="How long program entries waited in Redis before this instance read them (worst of 15 s).",
            ),
            panel(
                "Event-loop lag",
                Query(f"forumcast_event_loop_lag_seconds{{{mine}}}", "{{instance}}"),
                unit="s",
                description="Worst lateness of a timer over the last 15 s; the alert fires above 100 ms.",
            ),
            panel(
                "CPU",
                Query(f"rate(process_cpu_seconds_total{{{mine}}}[{RATE}])", "{{instance}}"),
                unit="percentunit",
            ),
            panel(
                "Resident memory",
                Query(f"process_resident_memory_bytes{{{mine}}}", "{{instance}}"),
                unit="bytes",
            ),
            panel(
                "Open file descriptors",
                Query(f"process_open_fds{{{mine}}}", "{{instance}}"),
                Query(f"process_max_fds{{{mine}}}", "{{instance}} limit"),
            ),
            panel(
                "Background tasks down / failing",
                Query(f"min by (task) (forumcast_task_up{{{mine}}})", "{{task}} up"),
                Query(
                    f"sum by (task) (increase(forumcast_task_failures_total{{{mine}}}[{RATE}]))",
                    "{{task}} failures",
                ),
            ),
            panel(
                "HTTP 5xx ratio per instance",
                Query(
                    f'(sum by (instance) (rate(forumcast_http_requests_total{{{mine},status=~"5.."}}[{RATE}])) or '
                    f"sum by (instance) (rate(forumcast_http_requests_total{{{mine}}}[{RATE}])) * 0)"
                    f" / sum by (instance) (rate(forumcast_http_requests_total{{{mine}}}[{RATE}]))",
                    "{{instance}}",
                ),
                unit="percentunit",
            ),
            panel(
                "Scheduler lag and store errors",
                Query(f"forumcast_scheduler_lag_seconds{{{mine}}}", "{{instance}} scheduler lag (s)"),
                Query(
                    f"increase(forumcast_store_errors_total{{{mine}}}[{RATE}])", "{{instance}} store errors"
                ),
            ),
        ],
        variables=[STAGE, INSTANCE],
    )


DASHBOARDS = {"event": event, "relay": relay, "hls": hls, "exhibition": exhibition, "platform": platform}


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def build() -> dict[str, str]:
    """File name -> the JSON text it should hold."""
    return {f"{name}.json": render(make()) for name, make in DASHBOARDS.items()}


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, text in build().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
