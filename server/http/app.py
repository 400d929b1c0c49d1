"""The aiohttp application factory: state, middlewares, resource lifetimes, routes.

The factory imports everything and nothing imports the factory: handlers read their state
through the keys of :mod:`server.http.keys`. Resources with a lifetime are async generators
in ``app.cleanup_ctx``, set up in order and torn down in reverse: the supervised tasks, the
store, the probes (event-loop lag, the store's health), the credentials' refresh loops
(revoked tokens, rotated stream keys), the schedule (replays recorded delays from the store),
the scheduler, the live hub with its periodic work, the demo sources, then the exhibition.
Every long-lived task runs under the app's :class:`~server.supervisor.Supervisor`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from redis.exceptions import RedisError

from exhibits import app as exhibition
from server.auth import Tokens
from server.clock import Clock, SystemClock
from server.cluster.names import ClusterNames
from server.cluster.node import ClusterNode
from server.cluster.plane import Plane
from server.cluster.singleton import while_leading
from server.config import Config
from server.errors import ForumcastError
from server.events import EventBus
from server.http import (
    cluster_routes,
    hls_routes,
    inputs_routes,
    openapi_routes,
    ops_routes,
    page_routes,
    program_routes,
    publish_routes,
    schedule_routes,
    throttle,
    token_routes,
    watch_routes,
)
from server.http.forwarded import forwarded, parse_networks
from server.http.keys import (
    AUTH_THROTTLE,
    BUS,
    CLOCK,
    CLUSTER,
    CONFIG,
    EVENT,
    INGEST,
    LIVE,
    METRICS,
    REUSE_PORT,
    REVOCATIONS,
    SCHEDULE,
    SCHEDULER,
    STARTED,
    STORE,
    STREAM_KEYS,
    TASKS,
    TOKENS,
)
from server.http.middleware import errors, observe, on_prepare
from server.http.throttle import token_throttle
from server.ingest.listeners import running_listeners
from server.ingest.publisher import IngestEnv
from server.live.demo import run_demo
from server.live.hub import LiveHub
from server.live.settings import LiveEnv
from server.live.ticks import LiveTicks
from server.metrics import Metrics
from server.probes import watch_loop_lag, watch_store
from server.revocations import Revocations, refresh_loop, refresh_now
from server.schedule.model import Event
from server.schedule.scheduler import Scheduler
from server.schedule.service import ScheduleService
from server.store import open_store
from server.stream_keys import StreamKeys
from server.supervisor import Supervisor

log = logging.getLogger("forumcast.http")


async def _tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await app[TASKS].close()


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    # Without Redis, what the store holds is kept under data_dir across restarts.
    snapshot = Path(config.data_dir) / "state" / f"{app[EVENT].id}.json"
    store = open_store(config.redis_url or None, namespace=app[EVENT].id, snapshot_file=snapshot)
    app[STORE] = store
    log.info("state store: %s", store.kind)
    try:
        yield
    finally:
        await store.close()


async def _probes_ctx(app: web.Application) -> AsyncIterator[None]:
    """The event loop's lag (on real time, whatever the service's clock) and the store's health."""
    metrics, tasks = app[METRICS], app[TASKS]
    store, clock = app[STORE], app[CLOCK]
    async with (
        tasks.running("event-loop-lag", lambda: watch_loop_lag(SystemClock(), metrics.event_loop_lag.set)),
        tasks.running("store-probe", lambda: watch_store(store, clock, metrics.redis_up.set)),
    ):
        yield


async def _credentials_ctx(app: web.Application) -> AsyncIterator[None]:
    """Revoked tokens and rotated stream keys, read from the store now and every few seconds."""
    store, clock, revocations, keys = app[STORE], app[CLOCK], app[REVOCATIONS], app[STREAM_KEYS]
    loops = {
        "tokens-revocations": lambda: revocations.refresh(store, now=clock.wall()),
        "stream-keys": lambda: keys.refresh(store),
    }
    for name, refresh in loops.items():
        await refresh_now(refresh, name)
    tasks = app[TASKS]
    async with (
        tasks.running(
            "tokens-revocations", lambda: refresh_loop(clock, loops["tokens-revocations"], "revocations")
        ),
        tasks.running("stream-keys", lambda: refresh_loop(clock, loops["stream-keys"], "stream keys")),
    ):
        yield


async def _schedule_ctx(app: web.Application) -> AsyncIterator[None]:
    schedule = ScheduleService(app[EVENT], app[STORE], app[BUS])
    try:
        await schedule.load()
    except ForumcastError as exc:
        # Start anyway on the file's program: /readyz reports the store until it is back.
        log.warning("could not replay recorded delays: %s", exc.message)
    app[SCHEDULE] = schedule
    yield


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    scheduler = Scheduler(
        app[SCHEDULE],
        app[CLOCK],
        app[BUS],
        upcoming=timedelta(minutes=config.upcoming_minutes),
        metrics=app[METRICS],
    )
    app[SCHEDULER] = scheduler
    async with app[TASKS].running("scheduler", scheduler.run):
        yield


async def _live_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    clustered = bool(config.redis_url)
    hub = LiveHub(app[SCHEDULER], LiveEnv(app[CLOCK], app[METRICS], config.live()), mirrored=clustered)
    app[LIVE] = hub
    ticks = LiveTicks(hub, app[BUS])
    tasks = app[TASKS]
    async with contextlib.AsyncExitStack() as stack:
        if clustered:
            node = await _join_cluster(app, hub)
            stack.push_async_callback(node.close)
            for name, loop in node.loops().items():
                await stack.enter_async_context(tasks.running(name, loop))
        for name, loop in {
            "live-supervise": ticks.supervise,
            "live-viewers": ticks.viewers,
            "live-stats": ticks.stats,
            "live-stalls": ticks.stalls,
            "live-schedule-events": ticks.schedule_events,
        }.items():
            await stack.enter_async_context(tasks.running(name, loop))
        yield


async def _join_cluster(app: web.Application, hub: LiveHub) -> ClusterNode:
    """With Redis, instances share the event: this one's node, caught up before it serves.

    The cluster's timers (leases, heartbeats, retries) run on real time whatever the
    service's clock: what they guard expires in Redis, which keeps real time."""
    config, clock = app[CONFIG], SystemClock()
    plane = Plane(config.redis_url, ClusterNames.of(app[EVENT].id), instance=config.instance())
    node = ClusterNode(
        hub,
        plane,
        clock,
        app[BUS],
        app[SCHEDULE],
        address=f"{config.host}:{config.port}",
        started=app[STARTED],
    )
    app[CLUSTER] = node
    for attempt in range(3):
        try:
            await node.start()
            break
        except (RedisError, OSError) as exc:
            log.warning("cluster: Redis does not answer yet (%s); attempt %d", exc, attempt + 1)
            await clock.sleep(1.0)
    return node


async def _demo_ctx(app: web.Application) -> AsyncIterator[None]:
    """With the demo event: a looping test picture on every public stage."""
    if not (app[CONFIG].demo_inputs and app[EVENT].demo):
        yield
        return
    hub = app[LIVE]
    if CLUSTER in app:  # one instance publishes the demo pictures for all
        node = app[CLUSTER]
        demo = lambda: while_leading(node.plane, SystemClock(), "demo", lambda: run_demo(hub))  # noqa: E731
    else:
        demo = lambda: run_demo(hub)  # noqa: E731
    async with app[TASKS].running("demo", demo):
        yield


async def _ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    """The RTMP(S) and SRT listeners, publishing into the live hub (after the throttle's context)."""
    config = app[CONFIG]
    env = IngestEnv(
        app[LIVE],
        app[STREAM_KEYS],
        app[AUTH_THROTTLE],
        app[METRICS],
        app[CLOCK],
        config.ingest(reuse_port=app[REUSE_PORT]),
    )
    async with running_listeners(env, app[TASKS]) as servers:
        app[INGEST] = servers
        yield


async def _close_live(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for handlers: WebSocket handlers end once closed.
    if LIVE in app:
        await app[LIVE].close()


def create_app(
    config: Config, event: Event, *, tokens: Tokens, clock: Clock | None = None, reuse_port: bool = False
) -> web.Application:
    """A ready-to-run application serving ``event``."""
    # The client's address first (behind a trusted front), so logs, limits and audit see it.
    client = forwarded(parse_networks(config.trusted_proxies))
    app = web.Application(middlewares=[client, observe, errors, token_throttle])
    app.on_response_prepare.append(on_prepare)
    app[CONFIG] = config
    app[EVENT] = event
    app[TOKENS] = tokens
    app[STREAM_KEYS] = StreamKeys(tokens, config.stream_keys, inputs=(i.id for i in event.inputs()))
    app[REVOCATIONS] = Revocations()
    app[CLOCK] = clock = clock or SystemClock()
    app[STARTED] = datetime.fromtimestamp(clock.wall(), UTC).isoformat(timespec="seconds")
    app[BUS] = EventBus()
    app[METRICS] = metrics = Metrics(stage.id for stage in event.stages)
    app[TASKS] = Supervisor(clock, metrics)
    app.cleanup_ctx.extend(
        [
            _tasks_ctx,
            _store_ctx,
            _probes_ctx,
            _credentials_ctx,
            _schedule_ctx,
            _scheduler_ctx,
            _live_ctx,
            _demo_ctx,
        ]
    )
    throttle.setup(app)  # after the store's context: the throttle counts in the store
    app[REUSE_PORT] = reuse_port
    app.cleanup_ctx.append(_ingest_ctx)  # after the throttle's: keys are checked under it
    app.on_shutdown.append(_close_live)
    for routes in (
        cluster_routes,
        ops_routes,
        schedule_routes,
        publish_routes,
        watch_routes,
        page_routes,
        inputs_routes,
        program_routes,
        hls_routes,
        openapi_routes,
        token_routes,
    ):
        routes.setup(app)
    exhibition.setup(app)
    return app
