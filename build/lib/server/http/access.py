"""Who is asking: the request's token turned into a :class:`~server.auth.Principal`, and the checks.

Tokens come in ``Authorization: Bearer …`` or, for links that cannot carry headers (calendar
subscriptions, media URLs), in ``?token=``. Every route and WebSocket upgrade comes through
:func:`principal`, which also refuses revoked tokens (401 ``auth.revoked_token``).
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from server.auth import Principal, bearer
from server.errors import AuthError
from server.http.keys import REVOCATIONS, TOKENS
from server.http.throttle import token_failed


def principal(request: web.Request) -> Principal:
    """The verified principal of the request; 401 if there is no valid, unrevoked token."""
    token = bearer(request.headers.get("Authorization"), request.query.get("token"))
    try:
        return request.app[REVOCATIONS].check(request.app[TOKENS].verify(token))
    except AuthError as exc:
        if exc.code == "auth.invalid_token":  # a guess; an expired or revoked token is not one
            token_failed(request)
        raise


def optional_principal(request: web.Request) -> Principal | None:
    """The principal if the request carries a token (an invalid one is still a 401)."""
    if "Authorization" not in request.headers and "token" not in request.query:
        return None
    return principal(request)


def require_producer(request: web.Request, stage: str) -> Principal:
    who = principal(request)
    if not who.can_produce(stage):
        raise AuthError("auth.forbidden", f"this needs a producer token for stage {stage!r}")
    return who


def require_ops(request: web.Request) -> Principal:
    who = principal(request)
    if not who.is_ops:
        raise AuthError("auth.forbidden", "this needs an ops token")
    return who


def visible_stages(who: Principal | None, stages: Iterable[tuple[str, bool]]) -> set[str]:
    """Stage ids ``who`` may see: every open stage, plus the closed ones its token covers."""
    return {sid for sid, closed in stages if not closed or (who is not None and who.can_watch(sid))}
