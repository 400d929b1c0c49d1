"""Every Prometheus metric forumcast exports, on a registry of its own per application.

A fresh :class:`~prometheus_client.CollectorRegistry` per app keeps tests isolated and lets
two apps live in one process. Names start with ``forumcast_``; the viewer gauge is
``forumcast_viewers{stage,protocol}`` and is set by the relay (declared here so that
dashboards and alerts can be built before the first viewer arrives).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

#: Protocols a viewer can watch a stage with.
VIEWER_PROTOCOLS = ("ws", "hls")


class Metrics:
    def __init__(self, stages: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        r = self.registry
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.http_requests = Counter(
            "forumcast_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "forumcast_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.stage_live = Gauge(
            "forumcast_stage_live", "1 while a session is running on the stage, else 0", ["stage"], registry=r
        )
        self.stage_session = Gauge(
            "forumcast_stage_session",
            "1 for the session running on the stage now (its id and title); no series between sessions",
            ["stage", "session", "title"],
            registry=r,
        )
        self.scheduler_lag = Gauge(
            "forumcast_scheduler_lag_seconds",
            "How late the scheduler woke for its last session boundary",
            registry=r,
        )
        self.viewers = Gauge(
            "forumcast_viewers",
            "Viewers watching the stage now, by protocol",
            ["stage", "protocol"],
            registry=r,
        )
        # LL-HLS at the origin (server/live/hls.py): shared blocking reloads, renders, clients.
        self.hls_reload_wait = Histogram(
            "forumcast_hls_reload_wait_seconds",
            "How long a blocking playlist reload or a preload-hinted part was held",
            ["stage"],
            buckets=(0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 4.0, 8.0),
            registry=r,
        )
        self.hls_renders = Counter(
            "forumcast_hls_playlist_renders",
            "Media playlists rendered (one per state of the playlist, not one per request)",
            ["stage"],
            registry=r,
        )
        self.hls_waiting = Gauge(
            "forumcast_hls_waiting_requests",
            "Blocking playlist reloads and preload-hinted part requests held now",
            ["stage"],
            registry=r,
        )
        self.hls_clients = Gauge(
            "forumcast_hls_clients",
            "Distinct client addresses that fetched the stage's LL-HLS media within three target "
            "durations (the whole cluster's on every instance: take max, not sum)",
            ["stage"],
            registry=r,
        )
        self.input_up = Gauge(
            "forumcast_input_up", "1 while the input has a publisher", ["input"], registry=r
        )
        # In bytes, not bits: promtool's lint requires the base unit (multiply by 8 for bitrate).
        self.input_bitrate = Gauge(
            "forumcast_input_bytes_per_second",
            "Bytes per second the input's publisher sends, over the last 2 s",
            ["input"],
            registry=r,
        )
        self.relay_fragments = Counter(
            "forumcast_relay_fragments",
            "Media fragments received from the input's publishers",
            ["input"],
            registry=r,
        )
        self.relay_dropped = Counter(
            "forumcast_relay_dropped_fragments",
            "Fragments not sent to a viewer of the stage because it was behind",
            ["stage"],
            registry=r,
        )
        self.relay_stalled = Counter(
            "forumcast_relay_stalled_viewers",
            "Viewers reset because they took nothing for max_behind (a client that stopped reading)",
            ["stage"],
            registry=r,
        )
        self.viewer_refusals = Counter(
            "forumcast_viewer_refusals",
            "Viewer connections refused before the upgrade: per-address bound or a full instance",
            ["reason"],
            registry=r,
        )
        self.program_switches = Counter(
            "forumcast_program_switches",
            "Switches of a stage's program to another source, by reason",
            ["stage", "reason"],
            registry=r,
        )
        self.program_source = Gauge(
            "forumcast_program_source",
            "1 for the source on the stage's program now (an input id or 'slate'), else 0",
            ["stage", "source"],
            registry=r,
        )
        self.schedule_delays = Counter(
            "forumcast_schedule_delays", "Delays applied by producers, by stage", ["stage"], registry=r
        )
        self.store_errors = Counter(
            "forumcast_store_errors", "Store operations that failed after retries", registry=r
        )
        self.exhibit_views = Counter(
            "forumcast_exhibit_views",
            "Detail views of an exhibit in the hall (every view, not unique visitors)",
            ["exhibit"],
            registry=r,
        )
        self.exhibit_model_loads = Counter(
            "forumcast_exhibit_model_loads",
            "Exhibit 3D models loaded by a browser (every load, not unique visitors)",
            ["exhibit"],
            registry=r,
        )
        self.ingest_jobs = Counter(
            "forumcast_ingest_jobs",
            "3D model ingest jobs finished, by outcome (done or failed)",
            ["outcome"],
            registry=r,
        )
        self.ingest_seconds = Histogram(
            "forumcast_ingest_duration_seconds",
            "Time from an upload's acceptance to its LOD chain being stored",
            buckets=(0.5, 1, 2, 5, 10, 20, 40, 80, 160),
            registry=r,
        )
        self.auth_failures = Counter(
            "forumcast_auth_failures",
            "Failed credential checks, by kind (stream_key or token)",
            ["kind"],
            registry=r,
        )
        self.auth_throttled = Counter(
            "forumcast_auth_throttled",
            "Credential attempts turned away with 429 while their client or input is blocked",
            ["kind"],
            registry=r,
        )
        self.ingest_pool_restarts = Counter(
            "forumcast_ingest_pool_restarts",
            "Times the 3D ingest worker pool was rebuilt after a worker process died",
            registry=r,
        )
        self.task_failures = Counter(
            "forumcast_task_failures",
            "Unexpected exceptions of a supervised background task (each one restarts it)",
            ["task"],
            registry=r,
        )
        self.task_up = Gauge(
            "forumcast_task_up",
            "1 while a supervised background task runs, 0 while it waits to be restarted",
            ["task"],
            registry=r,
        )
        self.stage_leader = Gauge(
            "forumcast_stage_leader",
            "1 on the instance that makes the stage's program now (always 1 without Redis), else 0",
            ["stage"],
            registry=r,
        )
        self.leader_changes = Counter(
            "forumcast_leader_changes",
            "Times this instance took the lead of a stage (after a leader loss, or at start)",
            ["stage"],
            registry=r,
        )
        self.cluster_instances = Gauge(
            "forumcast_cluster_instances", "Live instances sharing the event (1 without Redis)", registry=r
        )
        # -- for the event-day dashboards and alerts (deploy/grafana, deploy/prometheus) --------
        self.input_keyframe_interval = Gauge(
            "forumcast_input_keyframe_interval_seconds",
            "Seconds between the last two video keyframes of the input (while it has a publisher here)",
            ["input"],
            registry=r,
        )
        self.input_fragment_age = Gauge(
            "forumcast_input_fragment_age_seconds",
            "Seconds since the input's last whole fragment (while it has a publisher here)",
            ["input"],
            registry=r,
        )
        self.publisher_refused = Counter(
            "forumcast_publisher_refused",
            "Publisher connections refused or closed for an error, by protocol and error code",
            ["protocol", "code"],
            registry=r,
        )
        self.publisher_connections = Gauge(
            "forumcast_publisher_connections",
            "Open RTMP and SRT connections here (publishing or still in their handshake)",
            ["protocol"],
            registry=r,
        )
        self.publisher_connects = Counter(
            "forumcast_publisher_connects",
            "Publishers that became the input's publisher here (a reconnect counts again)",
            ["input"],
            registry=r,
        )
        self.input_expected = Gauge(
            "forumcast_input_expected",
            "1 while the input is on the bill of a live session (its input or backup), else 0",
            ["input"],
            registry=r,
        )
        self.viewers_behind = Gauge(
            "forumcast_viewers_behind",
            "WebSocket viewers of the stage here that are behind the live edge (skipping fragments)",
            ["stage"],
            registry=r,
        )
        self.viewer_ttff = Histogram(
            "forumcast_viewer_ttff_seconds",
            "Time to first frame: from a viewer's upgrade to the first media fragment sent to it",
            ["protocol"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
            registry=r,
        )
        self.event_loop_lag = Gauge(
            "forumcast_event_loop_lag_seconds",
            "Worst lateness of a timer on the event loop over the last 15 s (server/probes.py)",
            registry=r,
        )
        self.redis_up = Gauge(
            "forumcast_redis_up",
            "1 while the state store answers a ping (always 1 without Redis: the memory store), else 0",
            registry=r,
        )
        self.redis_stream_lag = Gauge(
            "forumcast_redis_stream_lag_seconds",
            "Worst wait over the last 15 s of a program entry in Redis before this edge read it",
            ["stage"],
            registry=r,
        )
        self.stage_leader_epoch = Gauge(
            "forumcast_stage_leader_epoch",
            "The fencing epoch of the stage's leader as this instance last saw it (only with Redis)",
            ["stage"],
            registry=r,
        )
        self.meeting_requests = Counter(
            "forumcast_meeting_requests", "Meeting requests submitted to exhibitors", registry=r
        )
        # alone (no Redis) this instance is the whole cluster and leads every stage; a cluster
        # node sets both from what Redis says as it starts
        self.cluster_instances.set(1)
        self.redis_up.set(1)  # the memory store always answers; a probe sets it with Redis
        self.viewer_ttff.labels(protocol="ws")
        for outcome in ("done", "failed"):  # from 0, so that increase() sees the first failure
            self.ingest_jobs.labels(outcome=outcome)
        for stage in stages:
            self.stage_leader.labels(stage=stage).set(1)
            self.stage_live.labels(stage=stage).set(0)
            self.schedule_delays.labels(stage=stage)
            self.relay_dropped.labels(stage=stage)
            self.hls_reload_wait.labels(stage=stage)
            self.hls_renders.labels(stage=stage)
            self.hls_waiting.labels(stage=stage).set(0)
            self.hls_clients.labels(stage=stage).set(0)
            self.viewers_behind.labels(stage=stage).set(0)
            self.relay_stalled.labels(stage=stage)
            for protocol in VIEWER_PROTOCOLS:
                self.viewers.labels(stage=stage, protocol=protocol).set(0)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration (the label lookups are cached: they
        cost more than the increments on the hot path of small requests)."""
        key = (route, method, status)
        children = self._http_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(route=route, method=method, status=str(status)),
                self.http_duration.labels(route=route, method=method),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
