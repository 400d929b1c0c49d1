"""Publisher endpoints: ``WS /ws/publish/{input}`` and ``POST /ingest/{input}``.

Both authenticate with the input's stream key (``Authorization: Bearer KEY`` or ``?key=``),
refuse a second publisher unless it asks for ``takeover=1``, feed the bytes through an
incremental :class:`~server.media.fmp4.Fmp4Parser` and push what it yields into the input.
Malformed media ends only that publisher: it gets an ``error`` event (WebSocket, then close
1007/1009) or a 400/413 (HTTP); viewers keep watching whatever they had.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import WSMsgType, web

from server.errors import CODES, ForumcastError, MediaError
from server.http.bodies import parse_json
from server.http.keys import CONFIG, LIVE, STREAM_KEYS
from server.http.throttle import checked_key
from server.live.frames import text_frame
from server.live.inputs import LiveInput, PublisherSession
from server.media.fmp4 import Fmp4Parser
from server.media.types import MediaFragment

log = logging.getLogger("forumcast.live")
routes = web.RouteTableDef()
#: Longest and deepest text (control) message a publisher may send.
MAX_CONTROL_TEXT = 1024
MAX_CONTROL_DEPTH = 4


def _key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("key")


async def _admit(request: web.Request) -> tuple[LiveInput, bool]:
    """The input and the takeover flag, or the HTTP error (before any upgrade)."""
    live = request.app[LIVE].input(request.match_info["input"])
    keys = request.app[STREAM_KEYS]
    await checked_key(request, f"input:{live.id}", lambda: keys.check(live.id, _key(request)))
    takeover = request.query.get("takeover", "").lower() in ("1", "true", "yes")
    if live.publisher is not None and not takeover:
        raise ForumcastError(
            "live.input_busy", f"input {live.id!r} already has a publisher (use takeover=1 to replace it)"
        )
    return live, takeover


def _parser(request: web.Request) -> Fmp4Parser:
    return Fmp4Parser(max_box_size=request.app[CONFIG].max_box_size)


@routes.get("/ws/publish/{input}")
async def publish_ws(request: web.Request) -> web.WebSocketResponse:
    live, takeover = await _admit(request)
    ws = web.WebSocketResponse(compress=False, heartbeat=20.0, max_msg_size=request.app[CONFIG].max_box_size)
    await ws.prepare(request)
    transport = request.transport
    assert transport is not None

    def notify(message: dict[str, object]) -> None:
        if not transport.is_closing():
            transport.write(text_frame(message))

    closing: list[asyncio.Task[bool]] = []  # keeps the close task referenced until it ran

    def kick(code: str, message: str) -> None:
        notify({"type": "error", "code": code, "message": message})
        closing.append(asyncio.ensure_future(ws.close(code=CODES[code].ws, message=message.encode()[:120])))

    session = PublisherSession("ws", request.remote or "?", notify, kick)
    live.attach(session, takeover=takeover)
    log.info(
        "input %s: WebSocket publisher %s connected%s",
        live.id,
        session.remote,
        " (takeover)" if takeover else "",
    )
    parser = _parser(request)
    try:
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                live.received(session)
                for item in parser.feed(message.data):
                    live.push(session, item)
            elif message.type is WSMsgType.TEXT:
                _control(message.data, notify)
    except MediaError as exc:
        log.warning("input %s: refused media from %s: %s", live.id, session.remote, exc.message)
        notify({"type": "error", "code": exc.code, "message": exc.message})
        await ws.close(code=exc.wire.ws, message=exc.message.encode()[:120])
    finally:
        live.detach(session)
        log.info("input %s: WebSocket publisher %s gone", live.id, session.remote)
    return ws


def _control(text: str, notify: Callable[[dict[str, object]], None]) -> None:
    """Text messages from a publisher: ``{"type": "ping"}`` is answered; others get an error event."""
    try:
        # Control messages are tiny: a long text is refused unread, a deep or odd one by parse_json.
        message = parse_json(text, max_depth=MAX_CONTROL_DEPTH) if len(text) <= MAX_CONTROL_TEXT else None
    except ForumcastError:
        message = None
    if isinstance(message, dict) and message.get("type") == "ping":
        notify({"type": "pong"})
        return
    notify({"type": "error", "code": "live.bad_control", "message": "unknown control message (only ping)"})


@routes.post("/ingest/{input}")
async def ingest(request: web.Request) -> web.Response:
    live, takeover = await _admit(request)
    replaced = asyncio.Event()
    session = PublisherSession("http", request.remote or "?", lambda _: None, lambda *_: replaced.set())
    live.attach(session, takeover=takeover)
    log.info("input %s: HTTP publisher %s connected", live.id, session.remote)
    parser = _parser(request)
    received = fragments = 0
    try:
        async for chunk in request.content.iter_any():
            if replaced.is_set():
                raise ForumcastError("live.input_busy", "replaced by a new publisher (takeover)")
            received += len(chunk)
            live.received(session)
            for item in parser.feed(chunk):
                fragments += isinstance(item, MediaFragment)
                live.push(session, item)
    except MediaError as exc:
        log.warning("input %s: refused media from %s: %s", live.id, session.remote, exc.message)
        raise
    finally:
        live.detach(session)
        log.info("input %s: HTTP publisher %s gone after %d bytes", live.id, session.remote, received)
    return web.json_response({"input": live.id, "bytes": received, "fragments": fragments})


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
