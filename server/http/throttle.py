"""Credential guessing throttled: failed stream keys and tokens per client, counted in the store.

This module owns the HTTP side of :class:`~server.limiter.AuthThrottle` (its counts live in
the store, so the limits hold across instances):

* **Stream keys** (``kind=stream_key``): publishers' ``_admit`` and the ``?key=`` of a
  closed stage's watch run their check through :func:`checked_key`, which counts a wrong
  key against the client's address (``IP_LIMIT`` failures in a minute) and against the
  input or stage it was tried on (``TARGET_LIMIT``, across every client, so guessing from
  many addresses is bounded too, while one guesser cannot lock a publisher out).
* **Tokens** (``kind=token``): :func:`server.http.access.principal` marks a request whose
  token did not verify (:func:`token_failed`); the middleware :func:`token_throttle`
  counts it against the client's address, and checks every request that carries a
  token (``Authorization`` or ``?token=``) before its handler runs.

A blocked client gets 429 ``auth.too_many_attempts`` with ``Retry-After`` for every
attempt of that kind, the right credential included, until its block ends. The client is
``request.remote``: the peer, or behind a front listed in ``trusted_proxies`` the client its
``X-Forwarded-For`` names (:mod:`server.http.forwarded`); an unlisted proxy is one client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web

from server.http.keys import AUTH_THROTTLE, CLOCK, METRICS, STORE
from server.limiter import IP_LIMIT, AuthThrottle, Scope
from server.limiter import checked_key as _checked_key
from server.limits import Throttled

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Set on a request whose token failed verification (by :func:`token_failed`).
TOKEN_FAILED = web.RequestKey("token_failed", bool)


def _client(request: web.Request) -> Scope:
    return Scope(f"ip:{request.remote or '?'}", IP_LIMIT)


async def _admit(request: web.Request, kind: str, scopes: Sequence[Scope]) -> None:
    try:
        await request.app[AUTH_THROTTLE].check(kind, scopes)
    except Throttled:
        request.app[METRICS].auth_throttled.labels(kind=kind).inc()
        raise


async def _failed(request: web.Request, kind: str, scopes: Sequence[Scope]) -> None:
    request.app[METRICS].auth_failures.labels(kind=kind).inc()
    await request.app[AUTH_THROTTLE].failed(kind, scopes)


async def checked_key(request: web.Request, target: str, check: Callable[[], None]) -> None:
    """Run ``check`` (it raises on a wrong stream key) for ``target`` (``input:ID``) under the throttle."""
    app = request.app
    await _checked_key(app[AUTH_THROTTLE], app[METRICS], request.remote or "?", target, check)


def token_failed(request: web.Request) -> None:
    """Note that ``request`` carried a token that did not verify (the middleware counts it)."""
    request[TOKEN_FAILED] = True


@web.middleware
async def token_throttle(request: web.Request, handler: Handler) -> web.StreamResponse:
    if "Authorization" in request.headers or "token" in request.query:
        await _admit(request, "token", (_client(request),))
    try:
        return await handler(request)
    finally:
        if request.get(TOKEN_FAILED):
            await _failed(request, "token", (_client(request),))


async def _throttle_ctx(app: web.Application) -> AsyncIterator[None]:
    # The store exists only once its own context has run, which comes first.
    app[AUTH_THROTTLE] = AuthThrottle(app[STORE], app[CLOCK])
    yield


def setup(app: web.Application) -> None:
    """Make the throttle when the store is up (call after the store's context is added)."""
    app.cleanup_ctx.append(_throttle_ctx)
