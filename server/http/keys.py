"""The application's typed state: every :class:`aiohttp.web.AppKey` the handlers read.

A leaf module: it names the types of the values and imports nothing of the HTTP layer, so
route modules and the exhibition import their keys from here while the app factory
(:mod:`server.http.app`) imports the route modules. The factory fills the keys; nothing else
writes them.
"""

from __future__ import annotations

from aiohttp import web

from server.auth import Tokens
from server.clock import Clock
from server.cluster.node import ClusterNode
from server.config import Config
from server.events import EventBus
from server.ingest.listeners import Listener
from server.limiter import AuthThrottle, RateLimiter
from server.live.hub import LiveHub
from server.metrics import Metrics
from server.revocations import Revocations
from server.schedule.model import Event
from server.schedule.scheduler import Scheduler
from server.schedule.service import ScheduleService
from server.store.base import Store
from server.stream_keys import StreamKeys
from server.supervisor import Supervisor

CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", Clock)
#: When this instance started (ISO 8601, UTC), as ``/api/v1/cluster`` shows it.
STARTED = web.AppKey("started", str)
BUS = web.AppKey("bus", EventBus)
METRICS = web.AppKey("metrics", Metrics)
TOKENS = web.AppKey("tokens", Tokens)
EVENT = web.AppKey("event", Event)
STORE = web.AppKey("store", Store)
SCHEDULE = web.AppKey("schedule", ScheduleService)
SCHEDULER = web.AppKey("scheduler", Scheduler)
LIVE = web.AppKey("live", LiveHub)
#: This instance's part in the cluster (only with Redis: check ``CLUSTER in app``).
CLUSTER = web.AppKey("cluster", ClusterNode)
STREAM_KEYS = web.AppKey("stream_keys", StreamKeys)
#: Revoked token ids, refreshed from the store by the task ``tokens-revocations``.
REVOCATIONS = web.AppKey("revocations", Revocations)
#: Every long-lived task of the app, restarted when it fails (``/readyz`` reports them).
TASKS = web.AppKey("tasks", Supervisor)
#: Failed stream keys and tokens per client, counted in the store (made once the store is up).
AUTH_THROTTLE = web.AppKey("auth_throttle", AuthThrottle)
#: New LL-HLS viewer ids per client, counted in the store (made once the store is up).
HLS_VIEWER_LIMITER = web.AppKey("hls_viewer_limiter", RateLimiter)
#: Whether this instance shares its ports with others of a ``--workers`` pool (SO_REUSEPORT).
REUSE_PORT = web.AppKey("reuse_port", bool)
#: The RTMP(S) and SRT listeners running (server/ingest), for their bound ports.
INGEST = web.AppKey("ingest", list[Listener])
#: The security headers of each page path and of ``/static/`` (server/http/page_headers.py).
PAGE_HEADERS = web.AppKey("page_headers", dict[str, dict[str, str]])
