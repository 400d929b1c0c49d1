"""The two middlewares around every handler, and the one place errors become responses.

``observe`` (outermost) writes one log line and the request metrics per request, labelled
with the route template; ``errors`` turns every :class:`~server.errors.ForumcastError` (and
aiohttp's own 404/405) into the JSON error body with the status of its code, and anything
unexpected into a logged ``internal.error``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.errors import ForumcastError
from server.http.keys import METRICS
from server.limits import Throttled

log = logging.getLogger("forumcast.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Query parameters whose values are credentials: never written to the logs.
SECRET_PARAMS = frozenset({"token", "key"})


def error_response(error: ForumcastError) -> web.Response:
    response = web.json_response(error.to_json(), status=error.wire.http)
    if isinstance(error, Throttled):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


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
