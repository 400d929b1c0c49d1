"""HTTP routes for visits and meeting requests, and the per-client throttle of requests.

``POST /api/v1/exhibits/{id}/views``                           count a view or model load → 204
``GET  /api/v1/exhibits/{id}/stats``                           the exhibit's numbers (exhibitor:{id} or ops)
``POST /api/v1/exhibits/{id}/meeting-requests``                ask for a meeting → 201 + secret status URL
``GET  /api/v1/exhibits/{id}/meeting-requests[?status=]``      the requests (exhibitor:{id} or ops)
``POST /api/v1/exhibits/{id}/meeting-requests/{rid}/accept``   ``{"slot"}`` → the decided request
``POST /api/v1/exhibits/{id}/meeting-requests/{rid}/decline``  ``{"reason"?}`` → the decided request
``GET  /api/v1/meeting-requests/{secret}``                     the requester's view of their request

Handlers only translate between HTTP and :mod:`exhibits.visits` / :mod:`exhibits.meetings`.
Exhibits are public, so an unknown one is a 404 whoever asks; the token is checked next.
Bodies are read by :func:`server.http.bodies.read_json` up to a per-route limit (413
``request.too_large`` past it), nesting and numbers bounded.

Throttle: :class:`RateLimiter` allows each client (``request.remote``; proxies' forwarded
headers are not trusted) 5 meeting requests per exhibit in any 10 minutes. Only requests
that pass validation count, so fixing a form's mistakes costs nothing; the 6th gets 429
``meeting.rate_limited`` with ``Retry-After`` (seconds until the oldest hit leaves the
window).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Hashable
from datetime import datetime, timedelta

from aiohttp import web

from exhibits.catalog import Exhibit
from exhibits.exhibit_routes import require_exhibitor
from exhibits.keys import EXHIBITION
from exhibits.meetings import Meetings, MeetingStatus, parse_accept, parse_decline, parse_form
from exhibits.visits import VisitKind, Visits, parse_visit
from server import audit
from server.errors import ForumcastError
from server.http.bodies import read_json
from server.http.keys import CLOCK, METRICS, STORE
from server.http.middleware import error_response

#: Largest body read by each kind of route, in bytes.
MAX_VISIT_BODY = 1024
MAX_MEETING_BODY = 16 * 1024
MAX_DECISION_BODY = 4 * 1024
#: Headers on answers that carry a status link's secret or a requester's personal data.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class RateLimited(ForumcastError):
    """Too many requests from one client (429); ``retry_after`` is in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("meeting.rate_limited", f"too many meeting requests: try again in {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    """At most ``limit`` hits per key in any sliding ``window`` (a log of hit times per key).

    ``limit`` defaults to 5 and ``window`` to 10 minutes. ``max_keys`` (default 10 000)
    bounds memory: past it, the least recently seen key is forgotten. The windows live in
    this process, so N instances behind a load balancer allow up to N times the limit.
    """

    def __init__(
        self, *, limit: int = 5, window: timedelta = timedelta(minutes=10), max_keys: int = 10_000
    ) -> None:
        if limit < 1 or window <= timedelta(0) or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        # Insertion order is recency order: every hit re-inserts its key at the end.
        self._hits: dict[Hashable, deque[datetime]] = {}

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._hits)

    def hit(self, key: Hashable, now: datetime) -> None:
        """Count one hit for ``key`` at ``now``, or raise :class:`RateLimited` (not counted)."""
        hits = self._hits.pop(key, None) or deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        self._hits[key] = hits
        if len(hits) >= self.limit:
            wait = (hits[0] + self.window - now).total_seconds()
            raise RateLimited(max(1, math.ceil(wait)))
        hits.append(now)
        while len(self._hits) > self.max_keys:
            del self._hits[next(iter(self._hits))]


VISITS = web.AppKey("visits", Visits)
MEETINGS = web.AppKey("meetings", Meetings)
MEETING_LIMITER = web.AppKey("meeting_limiter", RateLimiter)

routes = web.RouteTableDef()


def _exhibit(request: web.Request) -> Exhibit:
    return request.app[EXHIBITION].exhibit(request.match_info["exhibit"])


def _owned_exhibit(request: web.Request) -> Exhibit:
    """The exhibit of the path (404 first), if the token may manage it (401/403 otherwise)."""
    exhibit = _exhibit(request)
    require_exhibitor(request, exhibit.id)
    return exhibit


@routes.post("/api/v1/exhibits/{exhibit}/views")
async def post_view(request: web.Request) -> web.Response:
    exhibit = _exhibit(request)
    visit = parse_visit(await read_json(request, max_bytes=MAX_VISIT_BODY))
    await request.app[VISITS].record(exhibit.id, visit)
    # After the store, so the metric never counts a view the exhibitor will not see.
    metrics = request.app[METRICS]
    counter = metrics.exhibit_views if visit.kind is VisitKind.DETAIL else metrics.exhibit_model_loads
    counter.labels(exhibit=exhibit.id).inc()
    return web.Response(status=204)


@routes.get("/api/v1/exhibits/{exhibit}/stats")
async def get_stats(request: web.Request) -> web.Response:
    exhibit = _owned_exhibit(request)
    body = (await request.app[VISITS].stats(exhibit.id)).to_json()
    body["meeting_requests"] = await request.app[MEETINGS].counts(exhibit.id)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


@routes.post("/api/v1/exhibits/{exhibit}/meeting-requests")
async def post_meeting_request(request: web.Request) -> web.Response:
    exhibit = _exhibit(request)
    now = request.app[CLOCK].now()
    form = parse_form(await read_json(request, max_bytes=MAX_MEETING_BODY), now=now)
    try:
        request.app[MEETING_LIMITER].hit((request.remote, exhibit.id), now)
    except RateLimited as exc:
        response = error_response(exc)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    meeting, secret = await request.app[MEETINGS].submit(exhibit.id, form, now=now)
    body = {
        "id": meeting.id,
        "status": meeting.status.value,
        "status_url": f"/api/v1/meeting-requests/{secret}",
        # The page for people: the secret rides in the fragment, which browsers never send.
        "status_page": f"/hall#request={secret}",
    }
    return web.json_response(body, status=201, headers=PRIVATE)


@routes.get("/api/v1/exhibits/{exhibit}/meeting-requests")
async def list_meeting_requests(request: web.Request) -> web.Response:
    exhibit = _owned_exhibit(request)
    wanted = request.query.get("status")
    try:
        status = None if wanted is None else MeetingStatus(wanted)
    except ValueError:
        known = ", ".join(s.value for s in MeetingStatus)
        raise ForumcastError("exhibit.bad_query", f"status must be one of {known}, got {wanted!r}") from None
    found = await request.app[MEETINGS].of_exhibit(exhibit.id, status=status)
    body = {"exhibit": exhibit.id, "count": len(found), "meeting_requests": [m.owner_json() for m in found]}
    return web.json_response(body, headers=PRIVATE)


@routes.post("/api/v1/exhibits/{exhibit}/meeting-requests/{request_id}/accept")
async def accept_meeting_request(request: web.Request) -> web.Response:
    exhibit = _exhibit(request)
    who = require_exhibitor(request, exhibit.id)
    slot = parse_accept(await read_json(request, max_bytes=MAX_DECISION_BODY))
    meetings, now = request.app[MEETINGS], request.app[CLOCK].now()
    meeting = await meetings.accept(exhibit.id, request.match_info["request_id"], slot, now=now)
    await audit.record(request, who, "meeting.accept", f"exhibit:{exhibit.id}/meeting:{meeting.id}")
    return web.json_response(meeting.owner_json(), headers=PRIVATE)


@routes.post("/api/v1/exhibits/{exhibit}/meeting-requests/{request_id}/decline")
async def decline_meeting_request(request: web.Request) -> web.Response:
    exhibit = _exhibit(request)
    who = require_exhibitor(request, exhibit.id)
    reason = parse_decline(await read_json(request, max_bytes=MAX_DECISION_BODY, empty={}))
    meetings, now = request.app[MEETINGS], request.app[CLOCK].now()
    meeting = await meetings.decline(exhibit.id, request.match_info["request_id"], reason, now=now)
    await audit.record(request, who, "meeting.decline", f"exhibit:{exhibit.id}/meeting:{meeting.id}")
    return web.json_response(meeting.owner_json(), headers=PRIVATE)


@routes.get("/api/v1/meeting-requests/{secret}")
async def requester_view(request: web.Request) -> web.Response:
    meeting = await request.app[MEETINGS].by_secret(request.match_info["secret"])
    catalog = request.app[EXHIBITION].catalog
    # The catalog may have lost the exhibit since (a new file at a restart): still answer.
    title = catalog.get(meeting.exhibit).title_en if meeting.exhibit in catalog else meeting.exhibit
    return web.json_response(meeting.requester_json(title), headers=PRIVATE)


async def _engagement_ctx(app: web.Application) -> AsyncIterator[None]:
    # The store exists only once its own context has run, which comes first.
    app[VISITS] = Visits(app[STORE])
    app[MEETINGS] = Meetings(app[STORE])
    yield


def setup(app: web.Application) -> None:
    """Mount the routes; the services are made over the app's store when it starts."""
    app[MEETING_LIMITER] = RateLimiter()
    app.cleanup_ctx.append(_engagement_ctx)
    app.router.add_routes(routes)
