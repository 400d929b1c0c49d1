"""HTTP routes for visits and meeting requests, and the per-client limits on both.

``POST /api/v1/visitors``                                      a new signed visitor id → 201
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

The two posting routes take only ``application/json`` (415 ``request.unsupported_media_type``
otherwise): a form or ``text/plain`` post is what any web site can make its visitors'
browsers send without asking, a JSON one needs a CORS preflight this service never grants.

Limits (:class:`server.limiter.RateLimiter`, counted in the store so they hold across
instances; the client is ``request.remote``, proxies' forwarded headers are not trusted):
each client may send 5 meeting requests per exhibit and 20 over all exhibits in 10
minutes, and get 20 new visitor ids in 10 minutes. Only meeting requests that pass
validation count, so fixing a form's mistakes costs nothing; past a limit: 429
``meeting.rate_limited`` / ``visit.rate_limited`` with ``Retry-After`` (seconds until the
window ends; windows start at a client's first request).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from exhibits.catalog import Exhibit
from exhibits.exhibit_routes import require_exhibitor
from exhibits.keys import EXHIBITION
from exhibits.meetings import Meetings, MeetingStatus, parse_accept, parse_decline, parse_form
from exhibits.visits import VisitKind, VisitorIds, Visits, parse_visit
from server import audit
from server.errors import ForumcastError
from server.http.bodies import read_json, require_json
from server.http.keys import CLOCK, METRICS, STORE, TOKENS
from server.limiter import RateLimiter
from server.limits import Limit

#: Largest body read by each kind of route, in bytes.
MAX_VISIT_BODY = 1024
MAX_MEETING_BODY = 16 * 1024
MAX_DECISION_BODY = 4 * 1024
#: Headers on answers that carry a status link's secret or a requester's personal data.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
#: Meeting requests one client may send to one exhibit, and to all of them, in 10 minutes.
MEETINGS_PER_EXHIBIT = Limit(5, 600.0)
MEETINGS_PER_CLIENT = Limit(20, 600.0)
#: New visitor ids one client may get in 10 minutes (a venue's NAT shares one address).
VISITOR_IDS_PER_CLIENT = Limit(20, 600.0)


VISITS = web.AppKey("visits", Visits)
MEETINGS = web.AppKey("meetings", Meetings)
VISITOR_IDS = web.AppKey("visitor_ids", VisitorIds)
MEETING_LIMITER = web.AppKey("meeting_limiter", RateLimiter)
MEETING_CLIENT_LIMITER = web.AppKey("meeting_client_limiter", RateLimiter)
VISITOR_LIMITER = web.AppKey("visitor_limiter", RateLimiter)

routes = web.RouteTableDef()


def _exhibit(request: web.Request) -> Exhibit:
    return request.app[EXHIBITION].exhibit(request.match_info["exhibit"])


def _owned_exhibit(request: web.Request) -> Exhibit:
    """The exhibit of the path (404 first), if the token may manage it (401/403 otherwise)."""
    exhibit = _exhibit(request)
    require_exhibitor(request, exhibit.id)
    return exhibit


@routes.post("/api/v1/visitors")
async def post_visitor(request: web.Request) -> web.Response:
    await request.app[VISITOR_LIMITER].hit(request.remote or "?")
    return web.json_response({"visitor": request.app[VISITOR_IDS].new()}, status=201, headers=PRIVATE)


@routes.post("/api/v1/exhibits/{exhibit}/views")
async def post_view(request: web.Request) -> web.Response:
    exhibit = _exhibit(request)
    require_json(request)
    visit = parse_visit(await read_json(request, max_bytes=MAX_VISIT_BODY))
    if not request.app[VISITOR_IDS].valid(visit.visitor):
        raise ForumcastError(
            "visit.invalid",
            "the visitor id was not handed out by this server",
            details=[{"field": "visitor", "reason": "must be an id from POST /api/v1/visitors"}],
        )
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
    require_json(request)
    now = request.app[CLOCK].now()
    form = parse_form(await read_json(request, max_bytes=MAX_MEETING_BODY), now=now)
    client = request.remote or "?"
    await request.app[MEETING_LIMITER].hit(f"{client}|{exhibit.id}")
    await request.app[MEETING_CLIENT_LIMITER].hit(client)
    meeting, secret = await request.app[MEETINGS].submit(exhibit.id, form, now=now)
    request.app[METRICS].meeting_requests.inc()
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
    store, clock = app[STORE], app[CLOCK]
    app[VISITS] = Visits(store)
    app[MEETINGS] = Meetings(store)
    meetings = partial(RateLimiter, store, clock, code="meeting.rate_limited", what="meeting requests")
    app[MEETING_LIMITER] = meetings(name="meetings-exhibit", limit=MEETINGS_PER_EXHIBIT)
    app[MEETING_CLIENT_LIMITER] = meetings(name="meetings-client", limit=MEETINGS_PER_CLIENT)
    app[VISITOR_LIMITER] = RateLimiter(
        store,
        clock,
        name="visitor-ids",
        limit=VISITOR_IDS_PER_CLIENT,
        code="visit.rate_limited",
        what="new visitor ids",
    )
    yield


def setup(app: web.Application) -> None:
    """Mount the routes; the services are made over the app's store when it starts."""
    app[VISITOR_IDS] = VisitorIds(partial(app[TOKENS].sign, "visitor"))
    app.cleanup_ctx.append(_engagement_ctx)
    app.router.add_routes(routes)
