"""Taking credentials back: ``POST /api/v1/tokens/revoke`` (ops) and the audit trail's reads,
``GET /api/v1/audit`` and ``GET /api/v1/audit.jsonl`` (ops).

A revocation names a token id (``{"jti": …}``) or carries the whole token (``{"token": …}``,
which must be one of ours, expired or not: its ``jti`` and expiry are read from it). The
token is refused on this instance at once and on the others within a refresh of their
revocation sets (:mod:`server.revocations`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from server import audit
from server.errors import AuthError, ForumcastError
from server.http.access import require_ops
from server.http.bodies import query_int, read_object
from server.http.keys import CLOCK, REVOCATIONS, STORE, TOKENS

routes = web.RouteTableDef()

#: Entries ``GET /api/v1/audit`` returns without ``limit``, and the most it returns.
AUDIT_PAGE = 100
AUDIT_MAX = 1000


@routes.post("/api/v1/tokens/revoke")
async def revoke(request: web.Request) -> web.Response:
    who = require_ops(request)
    # The shared reader: a deep or huge-number body is a 400, not a RecursionError or ValueError.
    payload = await read_object(request, code="auth.bad_revocation", example='{"jti": "…"} or {"token": "…"}')
    jti, token = payload.get("jti"), payload.get("token")
    expires: int | None = None
    if isinstance(token, str) and token and jti is None:
        try:
            revoked = request.app[TOKENS].verify(token, allow_expired=True)
        except AuthError as exc:
            raise ForumcastError("auth.bad_revocation", f"cannot revoke that token: {exc.message}") from None
        if not revoked.jti:
            raise ForumcastError("auth.bad_revocation", "that token has no 'jti' (issued before revocation)")
        jti, expires = revoked.jti, revoked.expires
    elif not isinstance(jti, str) or token is not None:
        raise ForumcastError("auth.bad_revocation", 'give either {"jti": "…"} or {"token": "…"}')
    clock = request.app[CLOCK]
    entry = await request.app[REVOCATIONS].revoke(request.app[STORE], jti, expires=expires, at=clock.wall())
    await audit.record(request, who, "token.revoke", f"token:{jti}", expires=expires)
    return web.json_response({"revoked": entry})


def _audit_query(request: web.Request, *, default_limit: int | None) -> dict[str, Any]:
    query = request.query
    since: datetime | None = None
    if "since" in query:
        try:
            since = datetime.fromisoformat(query["since"])
        except ValueError:
            since = None
        if since is None or since.tzinfo is None:
            raise ForumcastError("audit.bad_query", "'since' must be an ISO 8601 time with an offset")
    limit = default_limit
    if "limit" in query:  # ASCII digits only: str.isdigit() takes '²', which int() refuses
        limit = query_int(request, "limit", code="audit.bad_query", low=1, high=AUDIT_MAX, default=AUDIT_MAX)
    return {"since": since, "action": query.get("action") or None, "limit": limit}


@routes.get("/api/v1/audit")
async def read_audit(request: web.Request) -> web.Response:
    require_ops(request)
    query = _audit_query(request, default_limit=AUDIT_PAGE)
    entries = await audit.read(request.app[STORE], **query)
    return web.json_response({"entries": entries}, headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/audit.jsonl")
async def export_audit(request: web.Request) -> web.Response:
    require_ops(request)
    entries = await audit.read(request.app[STORE], **_audit_query(request, default_limit=None))
    body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
    return web.Response(
        text=body,
        content_type="application/x-ndjson",
        headers={"Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="audit.jsonl"'},
    )


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
