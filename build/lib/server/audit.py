"""The audit log: who did what to which target, when and from where.

Every producer, ops and exhibitor action (take, auto, delay, stream-key rotation, token
revocation, meeting accept/decline, model upload) is recorded by its handler with one call,
``await audit.record(request, who, "program.take", "stage:main", input="main-cam")``, after the
action succeeded. An entry::

    {"seq": 17, "at": "2020-12-06T02:00:00+00:00", "action": "program.take", "target": "stage:main",
     "who": {"subject", "role", "scope", "jti"}, "from": "203.0.113.9", "details": {...}}

``at`` is the service clock (``app[CLOCK]``), ``from`` the peer address. Storage, with the
store's own operations only: a counter (``audit`` / ``seq``, atomic across instances) numbers
the entries, and entry ``seq`` is appended to the list ``audit:{(seq - 1) // CHUNK}``; starting
a chunk deletes the one ``KEEP_CHUNKS`` back, so the log holds the last 90,000-100,000
entries. A store that does not answer loses the entry but not the action: the entry is
logged (as an error, in full) instead.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from server.auth import Principal
from server.errors import ForumcastError
from server.http.keys import CLOCK, STORE
from server.store.base import Store

log = logging.getLogger("forumcast.audit")

CHUNK = 10_000
KEEP_CHUNKS = 10
_SEQ = ("audit", "seq")


def _chunk(index: int) -> str:
    return f"audit:{index}"


def who_json(who: Principal) -> dict[str, Any]:
    return {"subject": who.subject, "role": who.role, "scope": who.scope, "jti": who.jti}


async def append(
    store: Store,
    *,
    at: datetime,
    who: dict[str, Any],
    action: str,
    target: str,
    remote: str | None,
    details: dict[str, Any] | None = None,
    chunk: int = CHUNK,
    keep: int = KEEP_CHUNKS,
) -> dict[str, Any]:
    """Store one entry (numbered, in its chunk; the oldest chunk goes when a new one starts)."""
    seq = await store.incr(*_SEQ)
    index, offset = divmod(seq - 1, chunk)
    entry = {
        "seq": seq,
        "at": at.isoformat(),
        "action": action,
        "target": target,
        "who": who,
        "from": remote,
        "details": details or {},
    }
    await store.append(_chunk(index), entry)
    if offset == 0 and index >= keep:
        await store.delete(_chunk(index - keep))
    return entry


async def record(request: web.Request, who: Principal, action: str, target: str, **details: Any) -> None:
    """Record ``who``'s ``action`` on ``target`` through the request's app (one line per handler)."""
    fields: dict[str, Any] = {
        "at": request.app[CLOCK].now(),
        "who": who_json(who),
        "action": action,
        "target": target,
        "remote": request.remote,
        "details": details,
    }
    try:
        await append(request.app[STORE], **fields)
    except ForumcastError as exc:
        log.error("audit entry not stored (%s): %s", exc.message, {**fields, "at": fields["at"].isoformat()})


async def read(
    store: Store,
    *,
    since: datetime | None = None,
    action: str | None = None,
    limit: int | None = None,
    chunk: int = CHUNK,
    keep: int = KEEP_CHUNKS,
) -> list[dict[str, Any]]:
    """The matching entries in order, the newest ``limit`` of them (all without a limit)."""
    last = (await store.counters(_SEQ[0])).get(_SEQ[1], 0)
    if last == 0:
        return []
    newest = (last - 1) // chunk
    found: list[dict[str, Any]] = []
    for index in range(newest, max(0, newest - keep + 1) - 1, -1):
        entries = [e for e in await store.items(_chunk(index)) if isinstance(e, dict)]
        times = [datetime.fromisoformat(e["at"]) for e in entries]
        found += [
            e
            for e, at in zip(entries, times, strict=True)
            if (since is None or at >= since) and (action is None or e.get("action") == action)
        ]
        if limit is not None and len(found) >= limit:
            break
        if since is not None and times and max(times) < since:
            break  # chunks before this one are older still
    found.sort(key=lambda e: int(e["seq"]))
    return found if limit is None else found[-limit:] if limit else []
