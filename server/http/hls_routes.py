"""LL-HLS over HTTP: ``GET /live/{stage}/index.m3u8`` and the URLs its playlists name.

- ``index.m3u8``: the multivariant playlist. It gives the playback a session id (``sid``)
  unless the request has one, and carries ``sid`` (and ``token``, for a closed stage) into
  every URL below it.
- ``media.m3u8``: the media playlist. ``_HLS_msn=N`` (``&_HLS_part=M``) blocks until the
  playlist holds that segment (part) or later, up to three target durations, then 503; a
  request more than two segments ahead is a 400. ``_HLS_skip=YES`` answers a delta update.
- ``{epoch}/init/{n}.mp4``, ``{epoch}/seg/{msn}.m4s``, ``{epoch}/part/{n}.m4s``: media. The
  epoch (this process's start) keeps URLs unique across restarts, so a CDN may cache them for
  a year. A part that is the next one to come (the preload hint) is held until it exists.

A closed stage needs ``?token=`` (``viewer:{stage}`` or a producer) on every URL, checked
before any byte. Playlists may be cached for a second (about a part), a blocking reload's
answer for a minute (its URL names a state of the playlist that never changes), media for a
year.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from aiohttp import web

from server.errors import AuthError, ForumcastError
from server.http.access import principal
from server.http.cors import cors_headers
from server.http.keys import CONFIG, LIVE
from server.live.hls import HlsOutput

routes = web.RouteTableDef()

PLAYLIST = "application/vnd.apple.mpegurl"
IMMUTABLE = "public, max-age=31536000, immutable"
#: What a cross-origin player's script may read beyond the CORS-safelisted headers.
EXPOSED = "Content-Length"


def _output(request: web.Request) -> HlsOutput:
    program = request.app[LIVE].program(request.match_info["stage"])
    if program.stage.closed and not principal(request).can_watch(program.stage.id):
        raise AuthError("auth.forbidden", f"stage {program.stage.id!r} is closed: this needs an invitation")
    output = request.app[LIVE].hls[program.stage.id]
    output.seen(request.query.get("sid"))
    return output


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


def _count(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 12:  # isdigit() alone takes '²'
        raise ForumcastError("hls.bad_request", f"{name} must be a non-negative integer")
    return int(value)


@routes.get("/live/{stage}/index.m3u8")
async def multivariant(request: web.Request) -> web.Response:
    output = _output(request)
    params = {"sid": request.query.get("sid") or secrets.token_urlsafe(9)}
    if "token" in request.query:
        params["token"] = request.query["token"]
    output.seen(params["sid"])
    text = output.packager.multivariant_playlist(query=urlencode(params))
    return web.Response(text=text, content_type=PLAYLIST, headers=_headers(request, "no-cache"))


@routes.get("/live/{stage}/media.m3u8")
async def media(request: web.Request) -> web.Response:
    output = _output(request)
    packager = output.packager
    msn, part = _count(request, "_HLS_msn"), _count(request, "_HLS_part")
    if part is not None and msn is None:
        raise ForumcastError("hls.bad_request", "_HLS_part needs _HLS_msn")
    cache = "public, max-age=1"
    if msn is not None:
        if packager.too_far(msn):
            raise ForumcastError("hls.too_far_ahead", f"segment {msn} is too far in the future")
        ready = await output.wait_for(lambda: packager.has(msn, part), within=3 * packager.target_duration)
        if not ready:
            raise ForumcastError("hls.not_yet", f"segment {msn} did not arrive in time")
        cache = "public, max-age=60"
    params = {k: request.query[k] for k in ("sid", "token") if k in request.query}
    skip = request.query.get("_HLS_skip") in ("YES", "v2")
    text = packager.media_playlist(query=urlencode(params), skip=skip)
    return web.Response(text=text, content_type=PLAYLIST, headers=_headers(request, cache))


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
    return _media(request, found.data())


@routes.get("/live/{stage}/{epoch}/part/{number:\\d{1,12}}.m4s")
async def part(request: web.Request) -> web.Response:
    output = _output(request)
    _check_epoch(request)
    packager = output.packager
    number = int(request.match_info["number"])
    if number == packager.next_part_number:  # the preload hint: hold until it exists
        await output.wait_for(lambda: packager.part(number) is not None, within=3 * packager.target_duration)
    found = packager.part(number)
    if found is None:
        raise ForumcastError("hls.gone", "no such part (not yet, or not any more)")
    return _media(request, found.data)


def _media(request: web.Request, data: bytes) -> web.Response:
    return web.Response(body=data, content_type="video/iso.segment", headers=_headers(request, IMMUTABLE))


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
