"""Viewer endpoints: ``WS /ws/watch/{stage}`` (the stage's program) and
``WS /ws/watch/input/{input}`` (a producer's preview of one input).

Everything that can refuse a viewer (unknown stage, closed stage without an invitation,
missing producer token) happens before the upgrade, as an HTTP error with the JSON body:
no media byte is sent to someone who may not watch. A closed stage admits a ``viewer:STAGE``
invitation, a producer of the stage, or (for a remote speaker's return feed) the stream key
of one of the stage's inputs in ``?key=``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server.errors import AuthError, ForumcastError
from server.http.access import principal
from server.http.keys import CLOCK, CONFIG, LIVE, METRICS, STREAM_KEYS
from server.http.throttle import checked_key
from server.live.fanout import Viewer
from server.live.frames import text_frame
from server.media.fanout import ViewerGate

log = logging.getLogger("forumcast.live")
routes = web.RouteTableDef()


@contextlib.asynccontextmanager
async def _open(request: web.Request) -> AsyncIterator[tuple[web.WebSocketResponse, Viewer]]:
    """Admit (or refuse, before the upgrade) and upgrade one viewer, for the block's duration."""
    config = request.app[CONFIG]
    admission = request.app[LIVE].admission
    address = request.remote or "?"
    try:
        admission.enter(address)
    except ForumcastError as exc:
        request.app[METRICS].viewer_refusals.labels(reason=exc.code).inc()
        raise
    try:
        ws = web.WebSocketResponse(compress=False, heartbeat=30.0, max_msg_size=2**16)
        await ws.prepare(request)
        assert request.transport is not None
        gate = ViewerGate(send_budget=config.send_budget, max_behind=config.max_behind)
        viewer = Viewer(ws, request.transport, gate)
        viewer.limit_kernel_buffer(config.viewer_send_buffer)
        yield ws, viewer
    finally:
        admission.leave(address)


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read until the viewer goes (viewers send nothing we act on; reading handles pings/close)."""
    async for _ in ws:
        pass


@routes.get("/ws/watch/input/{input}")
async def watch_input(request: web.Request) -> web.WebSocketResponse:
    hub = request.app[LIVE]
    live = hub.input(request.match_info["input"])
    who = principal(request)
    if not who.can_produce(live.decl.stage):
        raise AuthError("auth.forbidden", f"previewing {live.id!r} needs a producer token for its stage")
    shown = hub.preview(live.id)  # the input itself, or in a cluster its mirror
    async with _open(request) as (ws, viewer):
        shown.preview.join(viewer)
        live.tally()  # its publisher now shows PREVIEW (if it is connected here)
        try:
            await _drain(ws)
        finally:
            shown.preview.leave(viewer)
            live.tally()
    return ws


@routes.get("/ws/watch/{stage}")
async def watch_stage(request: web.Request) -> web.WebSocketResponse:
    hub = request.app[LIVE]
    program = hub.program(request.match_info["stage"])
    key = request.query.get("key")
    if program.stage.closed and key is not None:
        keys = request.app[STREAM_KEYS]

        def check() -> None:
            if not any(keys.matches(decl.id, key) for decl in program.stage.inputs):
                raise AuthError("auth.invalid_token", "that stream key is not one of this stage's inputs")

        await checked_key(request, f"stage:{program.stage.id}", check)
    elif program.stage.closed:
        who = principal(request)
        if not who.can_watch(program.stage.id):
            raise AuthError(
                "auth.forbidden", f"stage {program.stage.id!r} is closed: this needs an invitation"
            )
    async with _open(request) as (ws, viewer):
        clock, ttff = request.app[CLOCK], request.app[METRICS].viewer_ttff.labels(protocol="ws")
        upgraded = clock.monotonic()
        viewer.on_first_media = lambda: ttff.observe(clock.monotonic() - upgraded)
        viewer.write(text_frame(hub.now_message(program.stage.id)))
        program.join(viewer)
        try:
            await _drain(ws)
        finally:
            program.leave(viewer)
    return ws


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
