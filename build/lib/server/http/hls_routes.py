"""LL-HLS over HTTP: ``GET /live/{stage}/index.m3u8`` and the URLs its playlists name.

- ``index.m3u8``: the multivariant playlist. It carries ``token`` (for a closed stage) into
  every URL below it and nothing else: every player gets the same playlists at the same URLs
  (one entry in a CDN's cache, not one per viewer).
- ``media.m3u8``: the media playlist. ``_HLS_msn=N`` (``&_HLS_part=M``) blocks until the
  playlist holds that segment (part) or later, up to three target durations, then 503; a
  request more than two segments ahead is a 400. ``_HLS_skip=YES`` answers a delta update.
  Requests for the same state share one wait and one render (:mod:`server.live.hls`).
- ``{epoch}/init/{n}.mp4``, ``{epoch}/seg/{msn}.m4s``, ``{epoch}/part/{n}.m4s``: media. The
  epoch (this process's start) keeps URLs unique across restarts, so a CDN may cache them for
  a year. A part that is the next one to come (the preload hint, or one of the two after it, which
  a sibling instance a little ahead may have hinted) is held until it exists.
  Who fetched parts and segments (the client address) feeds the distinct-client estimate
  (:mod:`server.live.hls_audience`).

- ``POST viewer-id`` → 201 ``{"id", "interval"}``: a viewer id signed by the server for this
  stage (:class:`server.auth.SignedIds`), at most :data:`VIEWER_IDS_PER_CLIENT` per client
  address (429 ``hls.rate_limited`` past it, counted in the store across instances).
- ``POST heartbeat`` ``{"id"}`` → 204: our players send it every ``interval`` seconds,
  beside the playlist they play (through the front, if they play through it); the stage's
  HLS viewers are the ids heard lately, on any instance (:mod:`server.live.hls_audience`).
  An id not signed by us for this stage is a 422 ``hls.invalid_viewer`` and counts nothing.
  Both answers are ``no-store``: behind a CDN they must reach the origin.

A closed stage needs ``?token=`` (``viewer:{stage}`` or a producer) on every URL, checked
before any byte. Playlists (the multivariant one too) may be cached for a second (about a
part; :data:`LIVE_PLAYLIST`), a blocking reload's answer for a minute (its URL names a state
of the playlist that never changes), media for a year.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

from aiohttp import web

from server.auth import SignedIds
from server.errors import AuthError, ForumcastError
from server.http.access import principal
from server.http.bodies import read_object, require_json
from server.http.cors import cors_headers
from server.http.keys import CLOCK, CONFIG, HLS_VIEWER_LIMITER, LIVE, STORE, TOKENS
from server.limiter import RateLimiter
from server.limits import Limit
from server.live.hls import HlsOutput
from server.media.hls_reload import Decision, decide, reload_of

routes = web.RouteTableDef()

PLAYLIST = "application/vnd.apple.mpegurl"
IMMUTABLE = "public, max-age=31536000, immutable"
#: A playlist without a blocking request: fresh for a second (about a part's worth of
#: change), then a cache may answer with it for one more second while it fetches the next,
#: or for two while the origin errs. Bounded on purpose: a front that served an expired
#: playlist "while updating" without a bound would hand the first player after a quiet
#: minute a playlist whose parts are long gone.
LIVE_PLAYLIST = "public, max-age=1, stale-while-revalidate=1, stale-if-error=2"
#: What a cross-origin player's script may read beyond the CORS-safelisted headers.
EXPOSED = "Content-Length"
#: New viewer ids one client address may get in 10 minutes (a venue's NAT shares one address;
#: a player asks again only after a reload of its page or a failed heartbeat).
VIEWER_IDS_PER_CLIENT = Limit(30, 600.0)
NO_STORE = {"Cache-Control": "no-store"}


def _output(request: web.Request) -> HlsOutput:
    program = request.app[LIVE].program(request.match_info["stage"])
    if program.stage.closed and not principal(request).can_watch(program.stage.id):
        raise AuthError("auth.forbidden", f"stage {program.stage.id!r} is closed: this needs an invitation")
    return request.app[LIVE].hls[program.stage.id]


#: A closed stage's playlists and media: only for the invited, never kept by a shared cache
#: (a CDN that leaves ``?token=`` out of its cache key would serve them to anyone).
PRIVATE = "private, no-store"


def _headers(request: web.Request, cache: str) -> dict[str, str]:
    closed = request.app[LIVE].program(request.match_info["stage"]).stage.closed
    origins, origin = request.app[CONFIG].hls_cors_origins, request.headers.get("Origin")
    return {
        "Cache-Control": PRIVATE if closed else cache,
        **cors_headers(origins, origin, exposed=EXPOSED, listed_only=closed),
    }


def _check_epoch(request: web.Request) -> None:
    if request.match_info["epoch"] != request.app[LIVE].hls_epoch:
        raise ForumcastError("hls.gone", "that media is from an earlier run of the server")


@routes.get("/live/{stage}/index.m3u8")
async def multivariant(request: web.Request) -> web.Response:
    output = _output(request)
    params = {k: request.query[k] for k in ("token",) if k in request.query}
    text = output.packager.multivariant_playlist(query=urlencode(params))
    # Kept a second by a front (which then answers joins from its cache while it refreshes):
    # the variants change only when a take brings other codecs, and a player that read the
    # old one still gets the new EXT-X-MAP from the media playlist.
    return web.Response(text=text, content_type=PLAYLIST, headers=_headers(request, LIVE_PLAYLIST))


@routes.get("/live/{stage}/media.m3u8")
async def media(request: web.Request) -> web.Response:
    output = _output(request)
    reload = reload_of(request.query)
    decision = decide(output.packager, reload)
    if decision is Decision.TOO_FAR:
        raise ForumcastError("hls.too_far_ahead", f"segment {reload.msn} is too far in the future")
    if decision is Decision.WAIT:
        body = await output.blocking_playlist(reload)
        if body is None:
            raise ForumcastError("hls.not_yet", f"segment {reload.msn} did not arrive in time")
    else:
        body = output.playlist(reload)
    # A blocking reload's URL names a state of the playlist that never changes.
    cache = "public, max-age=60" if reload.blocking else LIVE_PLAYLIST
    return web.Response(body=body, content_type=PLAYLIST, charset="utf-8", headers=_headers(request, cache))


@routes.get("/live/{stage}/{epoch}/init/{number:\\d{1,9}}.mp4")
async def init(request: web.Request) -> web.Response:
    output = _output(request)
    _check_epoch(request)
    found = output.packager.inits.get(int(request.match_info["number"]))
    if found is None:
        raise ForumcastError("hls.gone", "no such init segment (any more)")
    return web.Response(body=found.data, content_type="video/mp4", headers=_headers(request, IMMUTABLE))


@routes.get("/live/{stage}/{epoch}/seg/{msn:\\d{1,12}}.m4s")
async def segment(request: web.Request) -> web.Response:
    output = _output(request)
    _check_epoch(request)
    found = output.packager.segment(int(request.match_info["msn"]))
    if found is None or not found.complete:
        raise ForumcastError("hls.gone", "no such segment (not yet, or not any more)")
    output.fetched_by(request.remote)
    return _media(request, found.data())


@routes.get("/live/{stage}/{epoch}/part/{number:\\d{1,12}}.m4s")
async def part(request: web.Request) -> web.Response:
    output = _output(request)
    _check_epoch(request)
    packager = output.packager
    number = int(request.match_info["number"])
    if packager.upcoming(number):  # the preload hint (or just after it): hold until it exists
        found = await output.held_part(number)
    else:
        found = packager.part(number)
    if found is None:
        raise ForumcastError("hls.gone", "no such part (not yet, or not any more)")
    output.fetched_by(request.remote)
    return _media(request, found.data)


def _media(request: web.Request, data: bytes) -> web.Response:
    return web.Response(body=data, content_type="video/iso.segment", headers=_headers(request, IMMUTABLE))


def _viewer_ids(request: web.Request) -> SignedIds:
    return SignedIds(lambda value: request.app[TOKENS].sign("hls-viewer", value))


@routes.post("/live/{stage}/viewer-id")
async def viewer_id(request: web.Request) -> web.Response:
    output = _output(request)
    await request.app[HLS_VIEWER_LIMITER].hit(request.remote or "?")
    viewer = _viewer_ids(request).new(request.match_info["stage"])
    return web.json_response(
        {"id": viewer, "interval": output.heartbeat_interval}, status=201, headers=NO_STORE
    )


@routes.post("/live/{stage}/heartbeat")
async def heartbeat(request: web.Request) -> web.Response:
    _output(request)  # a closed stage: the token, first
    require_json(request)
    example = '{"id": "<from POST viewer-id>"}'
    body = await read_object(request, code="hls.invalid_viewer", example=example, max_bytes=1024)
    viewer = body.get("id")
    if not (isinstance(viewer, str) and _viewer_ids(request).valid(viewer, request.match_info["stage"])):
        raise ForumcastError(
            "hls.invalid_viewer",
            "the viewer id was not handed out by this server for this stage",
            details=[{"field": "id", "reason": "must be an id from POST /live/{stage}/viewer-id"}],
        )
    await request.app[LIVE].hls_heard(request.match_info["stage"], viewer)
    return web.Response(status=204, headers=NO_STORE)


async def _limiter_ctx(app: web.Application) -> AsyncIterator[None]:
    # The store exists only once its own context has run, which comes first.
    app[HLS_VIEWER_LIMITER] = RateLimiter(
        app[STORE],
        app[CLOCK],
        name="hls-viewer-ids",
        limit=VIEWER_IDS_PER_CLIENT,
        code="hls.rate_limited",
        what="new viewer ids",
    )
    yield


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_limiter_ctx)
    app.router.add_routes(routes)
