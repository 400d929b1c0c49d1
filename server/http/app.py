"""The aiohttp application factory: typed state, middlewares, resource lifetimes.

Resources with a lifetime are async generators in ``app.cleanup_ctx``, set up in order and
torn down in reverse: the store, then the schedule (replays recorded delays from the store),
then the scheduler task. Two middlewares wrap every handler: ``observe`` (one log line and
the request metrics, with the route template as label) around ``errors`` (every
:class:`~server.errors.ForumcastError` becomes the JSON error body with the status of its code).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from server.auth import Tokens
from server.clock import Clock, SystemClock
from server.config import Config
from server.errors import ForumcastError
from server.events import EventBus
from server.live.hub import LiveHub
from server.metrics import Metrics
from server.schedule.model import Event
from server.schedule.scheduler import Scheduler
from server.schedule.service import ScheduleService
from server.store import open_store
from server.store.base import Store
from server.tasks import background

log = logging.getLogger("forumcast.http")

CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", Clock)
BUS = web.AppKey("bus", EventBus)
METRICS = web.AppKey("metrics", Metrics)
TOKENS = web.AppKey("tokens", Tokens)
EVENT = web.AppKey("event", Event)
STORE = web.AppKey("store", Store)
SCHEDULE = web.AppKey("schedule", ScheduleService)
SCHEDULER = web.AppKey("scheduler", Scheduler)
LIVE = web.AppKey("live", LiveHub)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: ForumcastError) -> web.Response:
    return web.json_response(error.to_json(), status=error.wire.http)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ForumcastError as exc:
        return error_response(exc)
    except web.HTTPNotFound:
        return error_response(ForumcastError("request.not_found", f"nothing at {request.path}"))
    except web.HTTPMethodNotAllowed as exc:
        response = error_response(
            ForumcastError("request.method_not_allowed", f"{request.method} is not allowed on {request.path}")
        )
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return response
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(ForumcastError("internal.error", "internal error"))


#: Query parameters whose values are credentials: never written to the logs.
SECRET_PARAMS = frozenset({"token", "key"})


def loggable_path(request: web.Request, route: str) -> str:
    """The request's path for the log: secret path segments and credentials masked."""
    if "{secret}" in route:
        return route  # e.g. a meeting request's status link: the path itself is the secret
    if not SECRET_PARAMS.intersection(request.query):
        return request.path_qs
    query = "&".join(
        f"{name}=***" if name in SECRET_PARAMS else f"{name}={value}" for name, value in request.query.items()
    )
    return f"{request.path}?{query}"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        route_info = request.match_info.route.resource
        route = route_info.canonical if route_info is not None else "unmatched"
        request.app[METRICS].observe_request(route, request.method, status, elapsed)
        # The log line's arguments cost as much as the metrics: build them only when wanted.
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %d %.1fms",
                request.method,
                loggable_path(request, route),
                status,
                elapsed * 1000,
                extra={
                    "route": route,
                    "status": status,
                    "remote": request.remote,
                    "ms": round(elapsed * 1000, 2),
                },
            )


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = open_store(config.redis_url or None, namespace=app[EVENT].id)
    app[STORE] = store
    log.info("state store: %s", store.kind)
    try:
        yield
    finally:
        await store.close()


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
    async with background(scheduler.run(), name="forumcast-scheduler"):
        yield


async def _live_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    hub = LiveHub(
        app[SCHEDULE],
        app[SCHEDULER],
        app[BUS],
        app[METRICS],
        app[CLOCK],
        tokens=app[TOKENS],
        stream_keys=config.stream_keys,
        gop_cache_bytes=config.gop_cache_bytes,
        stall_after=config.stall_after,
        failback_after=config.failback_after,
        slate_size=config.slate_dimensions,
        hls_target_duration=config.hls_target_duration,
        hls_part_target=config.hls_part_target,
        hls_window=config.hls_window,
    )
    app[LIVE] = hub
    async with background(hub.run(), name="forumcast-live"):
        yield


async def _demo_ctx(app: web.Application) -> AsyncIterator[None]:
    """With the demo event: a looping test picture on every public stage."""
    config = app[CONFIG]
    if not (config.demo_inputs and app[EVENT].demo):
        yield
        return
    from clients.testpattern import PatternSettings, encode_clip
    from server.live.demo import run_demo

    settings = PatternSettings(width=480, height=270, gop=25, bitrate=600_000, preset="ultrafast", busy=False)
    encoder = lambda label, seconds: encode_clip(label.upper(), seconds, settings)  # noqa: E731
    async with background(run_demo(app[LIVE], encoder), name="forumcast-demo"):
        yield


async def _close_live(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for handlers: WebSocket handlers end once closed.
    if LIVE in app:
        await app[LIVE].close()


def create_app(
    config: Config, event: Event, *, tokens: Tokens, clock: Clock | None = None
) -> web.Application:
    """A ready-to-run application serving ``event``."""
    from exhibits import app as exhibition
    from server.http import inputs_api, ops, pages, program_api, schedule_api
    from server.live import hls_routes, publish, watch

    app = web.Application(middlewares=[observe, errors])
    app[CONFIG] = config
    app[EVENT] = event
    app[TOKENS] = tokens
    app[CLOCK] = clock or SystemClock()
    app[BUS] = EventBus()
    app[METRICS] = Metrics(stage.id for stage in event.stages)
    app.cleanup_ctx.extend([_store_ctx, _schedule_ctx, _scheduler_ctx, _live_ctx, _demo_ctx])
    app.on_shutdown.append(_close_live)
    ops.setup(app)
    schedule_api.setup(app)
    publish.setup(app)
    watch.setup(app)
    pages.setup(app)
    inputs_api.setup(app)
    program_api.setup(app)
    hls_routes.setup(app)
    exhibition.setup(app)
    return app
