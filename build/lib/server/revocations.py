"""Revoked tokens: the list in the store, the in-memory set every request is checked against,
and the loop that keeps such caches fresh.

A revocation is one entry ``{"jti", "expires", "at"}`` appended to the store list
``tokens:revoked`` (``expires`` is the token's ``exp`` when it is known, else None: kept for
good). Every instance holds the revoked ids in a set, refreshed from the store every
:data:`REFRESH_INTERVAL` seconds by the supervised task ``tokens-revocations``; the instance
that takes a revocation adds it to its set at once. Entries past their token's expiry are
left out of the set (the token is refused as expired anyway). The list only grows by
revocations, which are rare, so reading it whole on every refresh is cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from server.auth import Principal
from server.clock import Clock
from server.errors import AuthError, ForumcastError
from server.store.base import Store

log = logging.getLogger("forumcast.auth")

#: Seconds between two reads of the store by the caches of revocations and stream keys.
REFRESH_INTERVAL = 2.0
STORE_KEY = "tokens:revoked"


class Revocations:
    def __init__(self) -> None:
        self._revoked: set[str] = set()
        self._fresh: set[str] = set()  # revoked here while a refresh reads the store

    def is_revoked(self, jti: str) -> bool:
        return bool(jti) and jti in self._revoked

    def check(self, who: Principal) -> Principal:
        """``who`` unless its token was revoked (401 ``auth.revoked_token``)."""
        if self.is_revoked(who.jti):
            raise AuthError("auth.revoked_token", "this token has been revoked")
        return who

    async def revoke(self, store: Store, jti: str, *, expires: int | None, at: float) -> dict[str, Any]:
        """Record the revocation in the store and refuse the token here from now on."""
        if not jti or len(jti) > 128:
            raise ForumcastError("auth.bad_revocation", "'jti' must be a token id (1-128 characters)")
        entry = {"jti": jti, "expires": expires, "at": at}
        await store.append(STORE_KEY, entry)
        self._revoked.add(jti)
        self._fresh.add(jti)
        return entry

    async def refresh(self, store: Store, *, now: float) -> None:
        """Replace the set with the store's revocations of tokens that have not expired."""
        self._fresh = set()
        entries = await store.items(STORE_KEY)
        self._revoked = self._fresh | {
            str(e["jti"])
            for e in entries
            if isinstance(e, dict) and "jti" in e and (e.get("expires") is None or e["expires"] > now)
        }


async def refresh_now(refresh: Callable[[], Awaitable[None]], what: str) -> None:
    """Run ``refresh`` once; a store that does not answer leaves the last known state in place."""
    try:
        await refresh()
    except ForumcastError as exc:
        log.warning("could not refresh %s from the store: %s", what, exc.message)


async def refresh_loop(clock: Clock, refresh: Callable[[], Awaitable[None]], what: str) -> None:
    """Run ``refresh`` every :data:`REFRESH_INTERVAL` seconds for as long as the task runs.

    A store that does not answer (``/readyz`` reports it) keeps the loop going rather than
    restarting it.
    """
    while True:
        await clock.sleep(REFRESH_INTERVAL)
        await refresh_now(refresh, what)
