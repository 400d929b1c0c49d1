"""Visits to the hall's exhibits: what is counted, how it is checked, where it is kept.

A visit is one event sent by a browser: a *detail* view (the exhibit's page or panel was
opened) or a *model* load (its 3D model was fetched and shown). Every event counts as a
view; each kind also counts *unique visitors*, told apart by an anonymous visitor id the
browser gets once from the server (``POST /api/v1/visitors``) and keeps (never a name,
never an address). The id carries an HMAC of the server secret (:class:`VisitorIds`), so
only ids the server handed out count: inventing 50 000 unique visitors would take 50 000
requests for ids, which are rate-limited per client address.

Store layout (under the store's namespace)::

    visits:{exhibit}                  counter group   detail_views, model_loads
    visitors:{exhibit}:{kind}         set             visitor ids that sent that kind

Unique visitors are the set's cardinality, so the number is exact even with several
instances sharing one Redis: two instances adding the same visitor agree that it is one.
Views themselves are not rate limited: they are cheap to count, and a repeated view only
moves the view count, never the unique visitors, which the exhibitor reads with that in mind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from server.auth import SignedIds
from server.errors import ForumcastError
from server.store.base import Store

#: An anonymous visitor id: 8 to 64 URL-safe characters (e.g. a random UUID or token).
VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
VISITOR_RULE = "must be 8 to 64 characters of A-Z, a-z, 0-9, - and _"


class VisitKind(StrEnum):
    """What a visit event reports (the value is the ``kind`` sent by the browser)."""

    DETAIL = "detail"
    MODEL = "model"

    @property
    def views_field(self) -> str:
        """The counter of every event of this kind in ``visits:{exhibit}``."""
        return "detail_views" if self is VisitKind.DETAIL else "model_loads"


@dataclass(frozen=True, slots=True)
class Visit:
    """One checked visit event, not yet attached to an exhibit."""

    visitor: str
    kind: VisitKind


@dataclass(frozen=True, slots=True)
class VisitStats:
    """An exhibit's numbers: every event, and distinct visitors, per kind."""

    exhibit: str
    detail_views: int
    detail_visitors: int
    model_loads: int
    model_visitors: int

    def to_json(self) -> dict[str, Any]:
        return {
            "exhibit": self.exhibit,
            "detail_views": self.detail_views,
            "detail_visitors": self.detail_visitors,
            "model_loads": self.model_loads,
            "model_visitors": self.model_visitors,
        }


def is_visitor_id(value: object) -> bool:
    """True if ``value`` is a string usable as an anonymous visitor id."""
    return isinstance(value, str) and VISITOR_ID.fullmatch(value) is not None


def parse_visit(payload: Any) -> Visit:
    """The visit in a request body ``{"visitor": ..., "kind": ...}``.

    Raises ``visit.invalid`` (422) whose ``details`` list every problem as
    ``{"field", "reason"}``; unknown fields are problems too, so a typo is not ignored.
    """
    if not isinstance(payload, dict):
        raise ForumcastError(
            "visit.invalid",
            'the body must be a JSON object like {"visitor": "...", "kind": "detail"}',
            details=[{"field": "", "reason": "must be a JSON object"}],
        )
    problems: list[dict[str, str]] = []
    visitor = payload.get("visitor")
    if visitor is None:
        problems.append({"field": "visitor", "reason": "is required"})
    elif not is_visitor_id(visitor):
        problems.append({"field": "visitor", "reason": VISITOR_RULE})
    kind = payload.get("kind")
    kinds = ", ".join(k.value for k in VisitKind)
    if kind is None:
        problems.append({"field": "kind", "reason": f"is required: one of {kinds}"})
    elif not isinstance(kind, str) or kind not in {k.value for k in VisitKind}:
        problems.append({"field": "kind", "reason": f"must be one of {kinds}"})
    problems.extend(
        {"field": str(name), "reason": "unknown field"} for name in payload if name not in ("visitor", "kind")
    )
    if problems:
        raise ForumcastError("visit.invalid", f"{len(problems)} problem(s) in the visit", details=problems)
    return Visit(visitor=str(visitor), kind=VisitKind(str(kind)))


class VisitorIds(SignedIds):
    """Hands out anonymous visitor ids signed by the server and tells them from invented ones.

    An id is 16 random URL-safe characters and 22 of their HMAC (``sign``, e.g.
    ``Tokens.sign`` bound to ``"visitor"``): 38 characters that are also a valid
    :data:`VISITOR_ID`. A new random secret (none configured) makes earlier ids invalid, and
    the hall page asks for a new one.
    """


def _visitors_key(exhibit: str, kind: VisitKind) -> str:
    return f"visitors:{exhibit}:{kind.value}"


class Visits:
    """Counts visits into the store and reads an exhibit's numbers back.

    Exhibit ids are taken as given: the caller has already checked that the exhibit
    exists (the HTTP layer answers ``exhibit.unknown`` first).
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def record(self, exhibit: str, visit: Visit) -> bool:
        """Count ``visit`` for ``exhibit``; True if it is this visitor's first of its kind."""
        await self._store.incr(f"visits:{exhibit}", visit.kind.views_field)
        return await self._store.add(_visitors_key(exhibit, visit.kind), visit.visitor)

    async def stats(self, exhibit: str) -> VisitStats:
        """The numbers of ``exhibit`` (all zero before its first visit)."""
        counters = await self._store.counters(f"visits:{exhibit}")
        return VisitStats(
            exhibit=exhibit,
            detail_views=counters.get(VisitKind.DETAIL.views_field, 0),
            detail_visitors=await self._store.cardinality(_visitors_key(exhibit, VisitKind.DETAIL)),
            model_loads=counters.get(VisitKind.MODEL.views_field, 0),
            model_visitors=await self._store.cardinality(_visitors_key(exhibit, VisitKind.MODEL)),
        )
