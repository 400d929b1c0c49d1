"""Meeting requests: a visitor asks an exhibitor to meet at one of a few proposed times.

This module owns the request's record and its life, :class:`MeetingStatus` (pending →
accepted | declined, decided once and for good), the checks of what a requester sends
(every problem reported at once), and :class:`Meetings`, the service that keeps requests
in the store. How often one client may ask is the HTTP layer's business
(:mod:`exhibits.engagement_routes`).

Secret status links: the requester gets ``/api/v1/meeting-requests/<secret>`` with a
``secrets.token_urlsafe(24)`` secret (192 bits). Only its SHA-256 is stored, so whoever
reads the store (a backup, ``redis-cli``) cannot turn it into working links; no salt is
needed because the secret is random, not chosen by a person.

Store layout (under the store's namespace)::

    meeting:{id}                    value          the request's record (to_store)
    meeting-link:{sha256(secret)}   value          the request id the link opens
    meetings:{exhibit}              list           request ids, oldest first
    meetings:{exhibit}:status       counter group  pending, accepted, declined
    meeting-decided                 set            request ids a decision has claimed

A decision first claims the request in ``meeting-decided`` (atomic SADD), so of two
decisions at the same moment, on one instance or two, exactly one wins; the other gets
``meeting.already_decided``. A crash between claim and write leaves the request pending
for good: the safe side, as a requester never gets two answers.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from exhibits.visits import VISITOR_RULE, is_visitor_id
from server.errors import ForumcastError
from server.store.base import Store

#: What a status link's secret looks like (``secrets.token_urlsafe(24)``: 32 characters).
SECRET = re.compile(r"[A-Za-z0-9_-]{32}")
#: What a request id looks like (``secrets.token_hex(8)``); others are unknown unread.
REQUEST_ID = re.compile(r"[0-9a-f]{16}")


class MeetingStatus(StrEnum):
    """Where a request is in its life; the value is what the API shows."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"

    def check_transition(self, target: MeetingStatus) -> None:
        """Raise ``meeting.already_decided`` (409) unless ``self`` may become ``target``."""
        if target not in TRANSITIONS[self]:
            raise ForumcastError(
                "meeting.already_decided", f"the meeting request is already {self.value}, not pending"
            )


#: The only moves: a pending request is decided once; a decision is final.
TRANSITIONS: dict[MeetingStatus, frozenset[MeetingStatus]] = {
    MeetingStatus.PENDING: frozenset({MeetingStatus.ACCEPTED, MeetingStatus.DECLINED}),
    MeetingStatus.ACCEPTED: frozenset(),
    MeetingStatus.DECLINED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class MeetingForm:
    """What a requester sent, checked by :func:`parse_form`."""

    name: str
    organisation: str
    email: str
    message: str
    #: Proposed times, aware, in the offset the requester sent them in.
    slots: tuple[datetime, ...]
    visitor: str | None = None


#: Longest accepted text per field, in characters after trimming surrounding blanks.
MAX_CHARS = {"name": 120, "organisation": 160, "email": 254, "message": 2000, "reason": 500}
FORM_FIELDS = ("name", "organisation", "email", "message", "slots", "visitor")
#: Plausible, not RFC 5322: one @, no blanks, a dot inside the domain.
_EMAIL = re.compile(r"[^\s@]{1,64}@[^\s@.]+(?:\.[^\s@.]+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tabs and line breaks are fine
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Problems = list[dict[str, str]]


def _invalid(problems: Problems, what: str = "meeting request") -> ForumcastError:
    return ForumcastError("meeting.invalid", f"{len(problems)} problem(s) in the {what}", details=problems)


def _text(payload: dict[str, Any], field: str, problems: Problems, *, required: bool = True) -> str | None:
    """The trimmed string at ``field``, or None (with a problem noted if it is wrong)."""
    value = payload.get(field)
    reason = None
    if value is None or (isinstance(value, str) and not value.strip()):
        reason = "is required" if required else None
        value = None if required else ""
    elif not isinstance(value, str):
        reason = "must be a string"
    elif len(value := value.strip()) > MAX_CHARS[field]:
        reason = f"must be at most {MAX_CHARS[field]} characters"
    elif (_CONTROL_MULTILINE if field in ("message", "reason") else _CONTROL).search(value):
        reason = "must not contain control characters"
    if reason is not None:
        problems.append({"field": field, "reason": reason})
        return None
    return value


def parse_moment(value: Any) -> tuple[datetime | None, str]:
    """``(moment, "")`` for an ISO 8601 date-time with a UTC offset, else ``(None, why)``."""
    if not isinstance(value, str) or len(value) > 64:
        return None, "must be an ISO 8601 date and time string"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None, "is not an ISO 8601 date and time like 2020-12-07T15:00:00+08:00"
    if moment.utcoffset() is None:
        return None, "must include a UTC offset, like 2020-12-07T15:00:00+08:00"
    return moment, ""


def _slots(value: Any, problems: Problems, now: datetime, limits: dict[str, Any]) -> tuple[datetime, ...]:
    horizon, max_slots, step = limits["horizon"], limits["max_slots"], limits["step"]
    if not isinstance(value, list) or not 1 <= len(value) <= max_slots:
        problems.append({"field": "slots", "reason": f"must be a list of 1 to {max_slots} proposed times"})
        if not isinstance(value, list):
            return ()
    first_at: dict[datetime, int] = {}
    for index, item in enumerate(value):
        moment, reason = parse_moment(item)
        if moment is None:
            pass
        elif moment <= now:
            reason = "is not in the future"
        elif moment > now + horizon:
            reason = f"must not be later than {(now + horizon).astimezone(UTC).isoformat()}"
        elif step is not None and (moment - _EPOCH) % step:
            reason = f"must be on a {int(step.total_seconds() // 60)}-minute boundary"
        elif moment in first_at:
            reason = f"is the same time as slots[{first_at[moment]}]"
        else:
            first_at[moment] = index
        if reason:
            problems.append({"field": f"slots[{index}]", "reason": reason})
    return tuple(first_at)


def _unknown_fields(payload: dict[str, Any], known: tuple[str, ...], problems: Problems) -> None:
    problems.extend({"field": str(name), "reason": "unknown field"} for name in payload if name not in known)


def parse_form(
    payload: Any,
    *,
    now: datetime,
    horizon: timedelta = timedelta(days=60),
    max_slots: int = 3,
    step: timedelta | None = timedelta(minutes=15),
) -> MeetingForm:
    """The checked form in a request body, or ``meeting.invalid`` listing every problem.

    ``now``: slots must be after it. ``horizon``: and at most this far ahead (default 60
    days). ``max_slots``: how many times a requester may propose (default 3).
    ``step``: slots must fall on multiples of it since the epoch (default 15 minutes,
    i.e. :00, :15, :30, :45 in every whole-quarter-hour offset); None accepts any time.
    Problems are ``{"field", "reason"}``; a slot's field is ``slots[i]``.
    """
    if not isinstance(payload, dict):
        raise _invalid([{"field": "", "reason": "must be a JSON object"}])
    problems: Problems = []
    name = _text(payload, "name", problems)
    organisation = _text(payload, "organisation", problems, required=False)
    email = _text(payload, "email", problems)
    if email is not None and not _EMAIL.fullmatch(email):
        problems.append({"field": "email", "reason": "is not a plausible email address"})
    message = _text(payload, "message", problems)
    limits = {"horizon": horizon, "max_slots": max_slots, "step": step}
    slots = _slots(payload.get("slots"), problems, now, limits)
    visitor = payload.get("visitor")
    if visitor is not None and not is_visitor_id(visitor):
        problems.append({"field": "visitor", "reason": VISITOR_RULE})
    _unknown_fields(payload, FORM_FIELDS, problems)
    if problems or name is None or organisation is None or email is None or message is None:
        raise _invalid(problems)
    return MeetingForm(name, organisation, email, message, slots, visitor)


def parse_accept(payload: Any) -> datetime:
    """The slot in an accept body ``{"slot": ...}``, or ``meeting.invalid``."""
    if not isinstance(payload, dict):
        raise _invalid([{"field": "", "reason": 'must be a JSON object like {"slot": "..."}'}], "acceptance")
    problems: Problems = []
    moment, reason = parse_moment(payload["slot"]) if "slot" in payload else (None, "is required")
    if moment is None:
        problems.append({"field": "slot", "reason": reason})
    _unknown_fields(payload, ("slot",), problems)
    if problems or moment is None:
        raise _invalid(problems, "acceptance")
    return moment


def parse_decline(payload: Any) -> str | None:
    """The optional reason in a decline body ``{"reason": ...}`` (None if none given)."""
    if not isinstance(payload, dict):
        raise _invalid([{"field": "", "reason": 'must be a JSON object like {"reason": "..."}'}], "decline")
    problems: Problems = []
    reason = _text(payload, "reason", problems, required=False)
    _unknown_fields(payload, ("reason",), problems)
    if problems:
        raise _invalid(problems, "decline")
    return reason or None


@dataclass(frozen=True, slots=True)
class MeetingRequest:
    """One request to meet an exhibitor. ``email`` and ``message`` are the exhibitor's to see."""

    id: str
    exhibit: str
    name: str
    organisation: str
    email: str
    message: str
    slots: tuple[datetime, ...]
    visitor: str | None
    status: MeetingStatus
    created: datetime
    accepted_slot: datetime | None = None
    decline_reason: str | None = None
    decided: datetime | None = None

    def accepted(self, slot: datetime, *, at: datetime) -> MeetingRequest:
        """This request accepted for ``slot``, one of its proposed slots (same instant).

        ``meeting.already_decided`` if it is not pending; ``meeting.invalid`` if ``slot``
        was not proposed. The slot is kept as proposed (the requester's offset).
        """
        self.status.check_transition(MeetingStatus.ACCEPTED)
        proposed = next((s for s in self.slots if s == slot), None)
        if proposed is None:
            raise _invalid([{"field": "slot", "reason": "is not one of the proposed slots"}], "acceptance")
        return replace(self, status=MeetingStatus.ACCEPTED, accepted_slot=proposed, decided=at)

    def declined(self, reason: str | None, *, at: datetime) -> MeetingRequest:
        """This request declined, with an optional reason shown to the requester."""
        self.status.check_transition(MeetingStatus.DECLINED)
        return replace(self, status=MeetingStatus.DECLINED, decline_reason=reason, decided=at)

    def to_store(self) -> dict[str, Any]:
        """The record as JSON: times in ISO 8601 with their offsets, the status by value."""
        return {f.name: _dump(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_store(cls, data: dict[str, Any]) -> MeetingRequest:
        times = {name: _parse(data[name]) for name in ("created", "accepted_slot", "decided")}
        slots = tuple(datetime.fromisoformat(s) for s in data["slots"])
        return cls(**{**data, **times, "slots": slots, "status": MeetingStatus(data["status"])})

    def owner_json(self) -> dict[str, Any]:
        """Everything, for the exhibitor (and ops): the requester's contact included."""
        return self.to_store()

    def requester_json(self, exhibit_title: str) -> dict[str, Any]:
        """What the secret link shows: the request's state, nothing the exhibitor wrote privately."""
        return {
            "id": self.id,
            "exhibit": self.exhibit,
            "exhibit_title": exhibit_title,
            "status": self.status.value,
            "slots": _dump(self.slots),
            "accepted_slot": _dump(self.accepted_slot),
            "decline_reason": self.decline_reason,
            "created": _dump(self.created),
        }


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_dump(item) for item in value]
    return value.value if isinstance(value, MeetingStatus) else value


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def link_key(secret: str) -> str:
    """The store key of a status link: its secret is never stored, only this hash."""
    return "meeting-link:" + hashlib.sha256(secret.encode()).hexdigest()


def _unknown(what: str) -> ForumcastError:
    return ForumcastError("meeting.unknown", f"no meeting request {what}")


class Meetings:
    """Meeting requests kept in the store (layout in the module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def submit(self, exhibit: str, form: MeetingForm, *, now: datetime) -> tuple[MeetingRequest, str]:
        """Store a new pending request for ``exhibit``; return it and its link's secret.

        The secret is returned once and never again: only its hash is kept.
        """
        request = MeetingRequest(
            id=secrets.token_hex(8),
            exhibit=exhibit,
            name=form.name,
            organisation=form.organisation,
            email=form.email,
            message=form.message,
            slots=form.slots,
            visitor=form.visitor,
            status=MeetingStatus.PENDING,
            created=now,
        )
        secret = secrets.token_urlsafe(24)
        # The record first: should anything after it fail, an unlisted record is harmless,
        # while a listed id without a record would break the exhibitor's list.
        await self._store.set(f"meeting:{request.id}", request.to_store())
        await self._store.set(link_key(secret), request.id)
        await self._store.append(f"meetings:{exhibit}", request.id)
        await self._store.incr(f"meetings:{exhibit}:status", MeetingStatus.PENDING.value)
        return request, secret

    async def _load(self, request_id: str) -> MeetingRequest | None:
        data = await self._store.get(f"meeting:{request_id}")
        return None if data is None else MeetingRequest.from_store(data)

    async def get(self, exhibit: str, request_id: str) -> MeetingRequest:
        """The request ``request_id`` made to ``exhibit``; ``meeting.unknown`` otherwise.

        A request to another exhibit is unknown too: ids are not secret, so an exhibitor
        must not learn anything about other exhibits' requests by trying them.
        """
        request = await self._load(request_id) if REQUEST_ID.fullmatch(request_id) else None
        if request is None or request.exhibit != exhibit:
            raise _unknown(f"{request_id!r} for exhibit {exhibit!r}")
        return request

    async def by_secret(self, secret: str) -> MeetingRequest:
        """The request a status link opens; ``meeting.unknown`` for any other string."""
        request_id = await self._store.get(link_key(secret)) if SECRET.fullmatch(secret) else None
        request = await self._load(request_id) if isinstance(request_id, str) else None
        if request is None:
            raise _unknown("at this link")
        return request

    async def of_exhibit(self, exhibit: str, *, status: MeetingStatus | None = None) -> list[MeetingRequest]:
        """The requests made to ``exhibit``, oldest first, optionally only those in ``status``."""
        found = []
        for request_id in await self._store.items(f"meetings:{exhibit}"):
            request = await self._load(request_id)
            if request is not None and (status is None or request.status is status):
                found.append(request)
        return found

    async def counts(self, exhibit: str) -> dict[str, int]:
        """How many of ``exhibit``'s requests are in each status (every status listed)."""
        counters = await self._store.counters(f"meetings:{exhibit}:status")
        return {status.value: counters.get(status.value, 0) for status in MeetingStatus}

    async def accept(self, exhibit: str, request_id: str, slot: datetime, *, now: datetime) -> MeetingRequest:
        """Accept the request for ``slot`` (one of its proposed ones); the updated request."""
        return await self._decide(exhibit, request_id, lambda r: r.accepted(slot, at=now))

    async def decline(
        self, exhibit: str, request_id: str, reason: str | None, *, now: datetime
    ) -> MeetingRequest:
        """Decline the request, optionally saying why; the updated request."""
        return await self._decide(exhibit, request_id, lambda r: r.declined(reason, at=now))

    async def _decide(
        self, exhibit: str, request_id: str, decide: Callable[[MeetingRequest], MeetingRequest]
    ) -> MeetingRequest:
        current = await self.get(exhibit, request_id)
        # Checked before the claim, so a wrong slot does not use up the one decision.
        updated = decide(current)
        if not await self._store.add("meeting-decided", request_id):
            # Another decision won between our read and our claim.
            raise ForumcastError("meeting.already_decided", "the meeting request was decided just now")
        await self._store.set(f"meeting:{request_id}", updated.to_store())
        await self._store.incr(f"meetings:{exhibit}:status", MeetingStatus.PENDING.value, -1)
        await self._store.incr(f"meetings:{exhibit}:status", updated.status.value)
        return updated
