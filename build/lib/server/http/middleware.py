"""The two middlewares around every handler, and the one place errors become responses.

``observe`` (outermost) writes one log line and the request metrics per request, labelled
with the route template (a file's, once aiohttp has prepared it and its status is known:
:func:`on_prepare`, which also sets the ``Server`` header of every response); ``errors``
turns every :class:`~server.errors.ForumcastError` (and aiohttp's own 404/405) into the
JSON error body with the status of its code, and anything unexpected into a logged
``internal.error``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_plus

from aiohttp import web

from server.errors import ForumcastError
from server.http.keys import METRICS
from server.limits import Throttled

log = logging.getLogger("forumcast.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Query parameters whose values are credentials: never written to the logs.
SECRET_PARAMS = frozenset({"token", "key"})
#: The ``Server`` header of every response (aiohttp's would name its version).
SERVER = "forumcast"
_SEPARATORS = re.compile(r"([&;])")
# When observe left a response for on_prepare to record: the time it started.
_STARTED = web.RequestKey("forumcast_started", float)


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


def _mask_query(raw: str) -> str:
    """The raw (still percent-encoded) query with every credential's value replaced by ``***``."""
    parts = _SEPARATORS.split(raw)
    for index in range(0, len(parts), 2):  # odd indices are the separators themselves
        name, equals, _ = parts[index].partition("=")
        if equals and unquote_plus(name) in SECRET_PARAMS:
            parts[index] = f"{name}=***"
    return "".join(parts)


def loggable_path(request: web.Request, route: str) -> str:
    """The request's path for the log: secret path segments and credentials masked.

    The path and query stay as the client sent them, percent-encoded, so a decoded value
    (a newline, say) can never appear in the log line.
    """
    if "{secret}" in route:
        return route  # e.g. a meeting request's status link: the path itself is the secret
    url = request.rel_url
    query = url.raw_query_string
    if not query:
        return url.raw_path
    return f"{url.raw_path}?{_mask_query(query) if SECRET_PARAMS.intersection(request.query) else query}"


def _record(request: web.Request, status: int, started: float) -> None:
    """The request's metrics and its one log line."""
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


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    deferred = False
    try:
        response = await handler(request)
        # A file's status (404, 403, 304, 206, 416…) is decided when it is prepared, after
        # this returns: such a response is recorded by on_prepare, with its real status.
        deferred = isinstance(response, web.FileResponse) and not response.prepared
        if deferred:
            request[_STARTED] = started
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if not deferred:
            _record(request, status, started)


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Every response's headers are final: name no library version; record deferred requests."""
    response.headers["Server"] = SERVER
    started = request.get(_STARTED)
    if started is not None:
        del request[_STARTED]
        _record(request, response.status, started)
