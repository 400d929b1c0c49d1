"""Meeting requests: status transitions, form checks, and the service on memory and Redis."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio

from exhibits.meetings import (
    MAX_CHARS,
    MeetingForm,
    MeetingRequest,
    Meetings,
    MeetingStatus,
    link_key,
    parse_accept,
    parse_decline,
    parse_form,
)
from server.errors import ForumcastError
from server.store.base import Store
from server.store.memory import MemoryBackend, MemoryStore
from server.store.redis import RedisStore
from tests.support.redis_server import RedisServer

NOW = datetime.fromisoformat("2020-12-06T09:30:00+08:00")
SLOTS = ["2020-12-07T15:00:00+08:00", "2020-12-07T08:15:00+01:00", "2020-12-08T02:30:00Z"]
FORM = {
    "name": "  Li Wei ",
    "organisation": "Shenzhen Green Capital",
    "email": "li.wei@green-capital.example.cn",
    "message": "We would like to discuss\na pilot in Qianhai.",
    "slots": SLOTS,
    "visitor": "visitor-li-0001",
}
PENDING, ACCEPTED, DECLINED = MeetingStatus.PENDING, MeetingStatus.ACCEPTED, MeetingStatus.DECLINED


def problems(payload: Any, **limits: Any) -> list[tuple[str, str]]:
    """The (field, reason) pairs parse_form reports for ``payload``."""
    with pytest.raises(ForumcastError) as caught:
        parse_form(payload, now=NOW, **limits)
    assert caught.value.code == "meeting.invalid"
    return [(d["field"], d["reason"]) for d in caught.value.details]


def with_(**changes: Any) -> dict[str, Any]:
    return {**FORM, **changes}


# -- status ---------------------------------------------------------------------------------


@pytest.mark.parametrize("current", list(MeetingStatus))
@pytest.mark.parametrize("target", list(MeetingStatus))
async def test_only_pending_can_be_decided(current: MeetingStatus, target: MeetingStatus) -> None:
    if current is PENDING and target is not PENDING:
        current.check_transition(target)
        return
    with pytest.raises(ForumcastError) as caught:
        current.check_transition(target)
    assert caught.value.code == "meeting.already_decided"


# -- the form -------------------------------------------------------------------------------


async def test_a_good_form_is_trimmed_and_keeps_each_slots_offset() -> None:
    form = parse_form(FORM, now=NOW)
    assert form == MeetingForm(
        name="Li Wei",
        organisation="Shenzhen Green Capital",
        email="li.wei@green-capital.example.cn",
        message="We would like to discuss\na pilot in Qianhai.",
        slots=tuple(datetime.fromisoformat(s) for s in SLOTS),
        visitor="visitor-li-0001",
    )
    assert [s.isoformat() for s in form.slots] == [
        "2020-12-07T15:00:00+08:00",
        "2020-12-07T08:15:00+01:00",
        "2020-12-08T02:30:00+00:00",
    ]


async def test_organisation_and_visitor_are_optional() -> None:
    payload = {k: v for k, v in FORM.items() if k not in ("organisation", "visitor")}
    form = parse_form(payload, now=NOW)
    assert (form.organisation, form.visitor) == ("", None)
    assert parse_form(with_(organisation="   "), now=NOW).organisation == ""


async def test_every_problem_is_listed_at_once() -> None:
    payload = {
        "name": "",
        "organisation": "x" * 161,
        "email": "not-an-address",
        "message": 42,
        "slots": ["2020-12-07T15:00:00", "2020-12-05T15:00:00+08:00", "tomorrow", 7],
        "visitor": "no",
        "phone": "+86 755 0000",
    }
    assert problems(payload) == [
        ("name", "is required"),
        ("organisation", "must be at most 160 characters"),
        ("email", "is not a plausible email address"),
        ("message", "must be a string"),
        ("slots", "must be a list of 1 to 3 proposed times"),
        ("slots[0]", "must include a UTC offset, like 2020-12-07T15:00:00+08:00"),
        ("slots[1]", "is not in the future"),
        ("slots[2]", "is not an ISO 8601 date and time like 2020-12-07T15:00:00+08:00"),
        ("slots[3]", "must be an ISO 8601 date and time string"),
        ("visitor", "must be 8 to 64 characters of A-Z, a-z, 0-9, - and _"),
        ("phone", "unknown field"),
    ]


async def test_missing_fields_are_required() -> None:
    assert problems({}) == [
        ("name", "is required"),
        ("email", "is required"),
        ("message", "is required"),
        ("slots", "must be a list of 1 to 3 proposed times"),
    ]


@pytest.mark.parametrize("payload", [[], "name", None, 3])
async def test_the_body_must_be_an_object(payload: Any) -> None:
    assert problems(payload) == [("", "must be a JSON object")]


@pytest.mark.parametrize(
    ("slot", "reason"),
    [
        ("2020-12-07T15:00:00", "must include a UTC offset, like 2020-12-07T15:00:00+08:00"),
        ("2020-12-07", "must include a UTC offset, like 2020-12-07T15:00:00+08:00"),
        ("2020-12-06T09:30:00+08:00", "is not in the future"),  # exactly now
        ("2020-12-06T01:15:00Z", "is not in the future"),
        ("2021-02-04T09:45:00+08:00", "must not be later than 2021-02-04T01:30:00+00:00"),
        ("2020-12-07T15:07:00+08:00", "must be on a 15-minute boundary"),
        ("2020-12-07T15:00:30+08:00", "must be on a 15-minute boundary"),
        ("7 Dec 2020 15:00", "is not an ISO 8601 date and time like 2020-12-07T15:00:00+08:00"),
        ("2020-12-07T15:00:00+08:00" + " " * 50, "must be an ISO 8601 date and time string"),
        (None, "must be an ISO 8601 date and time string"),
    ],
)
async def test_a_bad_slot_is_named_with_its_index(slot: Any, reason: str) -> None:
    assert problems(with_(slots=[SLOTS[0], slot])) == [("slots[1]", reason)]


async def test_the_edges_of_the_window_are_inside() -> None:
    first, last = "2020-12-06T09:45:00+08:00", "2021-02-04T09:30:00+08:00"
    assert len(parse_form(with_(slots=[first, last]), now=NOW).slots) == 2


async def test_the_same_instant_in_two_offsets_is_a_repeat() -> None:
    same = ["2020-12-07T15:00:00+08:00", "2020-12-07T12:00:00+05:00", "2020-12-07T07:00:00Z"]
    assert problems(with_(slots=same)) == [
        ("slots[1]", "is the same time as slots[0]"),
        ("slots[2]", "is the same time as slots[0]"),
    ]


@pytest.mark.parametrize("slots", [[], None, "2020-12-07T15:00:00+08:00", {"a": 1}])
async def test_one_to_three_slots(slots: Any) -> None:
    assert problems(with_(slots=slots)) == [("slots", "must be a list of 1 to 3 proposed times")]


async def test_four_slots_are_too_many_and_each_is_still_checked() -> None:
    four = [*SLOTS, "2020-12-07T15:00:00"]
    assert problems(with_(slots=four)) == [
        ("slots", "must be a list of 1 to 3 proposed times"),
        ("slots[3]", "must include a UTC offset, like 2020-12-07T15:00:00+08:00"),
    ]
    four[3] = "2020-12-09T10:00:00+08:00"
    assert len(parse_form(with_(slots=four), now=NOW, max_slots=4).slots) == 4


async def test_limits_are_keyword_settings() -> None:
    odd = with_(slots=["2020-12-07T15:07:00+08:00"])
    assert parse_form(odd, now=NOW, step=None).slots[0].minute == 7
    assert problems(with_(slots=["2020-12-07T15:00:00+08:00"]), horizon=timedelta(hours=12)) == [
        ("slots[0]", "must not be later than 2020-12-06T13:30:00+00:00")
    ]


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("a@b.cn", True),
        ("first.last+fair@mail.example.co.uk", True),
        ("用户@例子.中国", True),
        ("a@b", False),
        ("a@@b.cn", False),
        ("a@b@c.cn", False),
        ("@b.cn", False),
        ("a b@c.cn", False),
        ("a@b..cn", False),
        ("a@.b.cn", False),
        ("a@b.cn.", False),
        ("x" * 65 + "@b.cn", False),
    ],
)
async def test_plausible_email_addresses(email: str, ok: bool) -> None:
    if ok:
        assert parse_form(with_(email=email), now=NOW).email == email
    else:
        assert problems(with_(email=email)) == [("email", "is not a plausible email address")]


async def test_an_address_longer_than_254_characters_is_refused() -> None:
    long = "a@" + "b" * 250 + ".cn"
    assert problems(with_(email=long)) == [("email", "must be at most 254 characters")]


async def test_text_lengths_and_control_characters() -> None:
    assert parse_form(with_(name="n" * 120, message="m" * 2000), now=NOW).name == "n" * 120
    assert problems(with_(name="n" * 121, message="m" * 2001)) == [
        ("name", f"must be at most {MAX_CHARS['name']} characters"),
        ("message", "must be at most 2000 characters"),
    ]
    # Line breaks and tabs belong in a message, not in a name.
    assert parse_form(with_(message="a\r\n\tb"), now=NOW).message == "a\r\n\tb"
    assert problems(with_(name="Li\nWei", organisation="x\x00", message="bell\x07")) == [
        ("name", "must not contain control characters"),
        ("organisation", "must not contain control characters"),
        ("message", "must not contain control characters"),
    ]


async def test_accept_and_decline_bodies() -> None:
    assert parse_accept({"slot": "2020-12-07T07:00:00Z"}) == datetime(2020, 12, 7, 7, tzinfo=UTC)
    assert parse_decline({}) is None
    assert parse_decline({"reason": "  "}) is None
    assert parse_decline({"reason": " Fully booked "}) == "Fully booked"


@pytest.mark.parametrize(
    ("parse", "payload", "details"),
    [
        (parse_accept, {}, [("slot", "is required")]),
        (
            parse_accept,
            {"slot": "2020-12-07T15:00:00", "note": 1},
            [
                ("slot", "must include a UTC offset, like 2020-12-07T15:00:00+08:00"),
                ("note", "unknown field"),
            ],
        ),
        (parse_accept, ["2020-12-07T07:00:00Z"], [("", 'must be a JSON object like {"slot": "..."}')]),
        (parse_decline, {"reason": "r" * 501}, [("reason", "must be at most 500 characters")]),
        (parse_decline, {"reason": 3, "x": 1}, [("reason", "must be a string"), ("x", "unknown field")]),
        (parse_decline, "no", [("", 'must be a JSON object like {"reason": "..."}')]),
    ],
)
async def test_bad_accept_and_decline_bodies(
    parse: Callable[[Any], Any], payload: Any, details: list[tuple[str, str]]
) -> None:
    with pytest.raises(ForumcastError) as caught:
        parse(payload)
    assert caught.value.code == "meeting.invalid"
    assert caught.value.details == [{"field": f, "reason": r} for f, r in details]


async def test_a_record_survives_the_store_format() -> None:
    form = parse_form(FORM, now=NOW)
    pending = MeetingRequest(
        "0123456789abcdef", "dk-wind-01", *vars_of(form), status=PENDING, created=NOW.astimezone(UTC)
    )
    later = NOW + timedelta(hours=1)
    for record in (pending, pending.accepted(form.slots[1], at=later), pending.declined("Booked", at=later)):
        assert MeetingRequest.from_store(record.to_store()) == record
    assert pending.to_store()["slots"] == [
        "2020-12-07T15:00:00+08:00",
        "2020-12-07T08:15:00+01:00",
        "2020-12-08T02:30:00+00:00",
    ]


def vars_of(form: MeetingForm) -> tuple[Any, ...]:
    return (form.name, form.organisation, form.email, form.message, form.slots, form.visitor)


# -- the service on both stores ---------------------------------------------------------------


@dataclass
class Backend:
    """Opens stores on one test namespace and reads back everything stored there."""

    open: Callable[[], Store]
    dump: Callable[[], Awaitable[str]]


@pytest_asyncio.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    namespace = f"meetings-{uuid.uuid4().hex}"
    opened: list[Store] = []
    if request.param == "memory":
        memory = MemoryBackend()

        def make() -> Store:
            opened.append(MemoryStore(namespace, backend=memory))
            return opened[-1]

        async def dump() -> str:
            return repr(memory.data)

        yield Backend(make, dump)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        raw = redis.asyncio.Redis.from_url(server.url, decode_responses=True)

        def make() -> Store:
            opened.append(RedisStore.from_url(server.url, namespace=namespace))
            return opened[-1]

        async def dump() -> str:
            found = []
            async for key in raw.scan_iter(f"forumcast:{namespace}:*"):
                kind = await raw.type(key)
                read = {"string": raw.get, "list": lambda k: raw.lrange(k, 0, -1), "hash": raw.hgetall}
                value = await (read[kind](key) if kind in read else raw.smembers(key))
                found.append(f"{key}={value!r}")
            return "\n".join(found)

        yield Backend(make, dump)
        await raw.aclose()
    for store in opened:
        await store.close()


@pytest.fixture
def meetings(backend: Backend) -> Meetings:
    return Meetings(backend.open())


async def submit(
    meetings: Meetings, exhibit: str = "cn-hydrogen-01", **changes: Any
) -> tuple[MeetingRequest, str]:
    return await meetings.submit(exhibit, parse_form(with_(**changes), now=NOW), now=NOW)


async def code_of(call: Awaitable[Any]) -> str:
    with pytest.raises(ForumcastError) as caught:
        await call
    return caught.value.code


async def test_a_submitted_request_is_pending_and_reachable(meetings: Meetings) -> None:
    request, secret = await submit(meetings)
    assert request.status is PENDING and request.created == NOW
    assert len(secret) == 32 and len(request.id) == 16
    assert await meetings.get("cn-hydrogen-01", request.id) == request
    assert await meetings.by_secret(secret) == request
    assert await meetings.of_exhibit("cn-hydrogen-01") == [request]
    assert await meetings.counts("cn-hydrogen-01") == {"pending": 1, "accepted": 0, "declined": 0}
    assert await meetings.counts("de-solar-01") == {"pending": 0, "accepted": 0, "declined": 0}


async def test_only_a_hash_of_the_secret_is_stored(backend: Backend, meetings: Meetings) -> None:
    request, secret = await submit(meetings)
    stored = await backend.dump()
    assert secret not in stored
    assert hashlib.sha256(secret.encode()).hexdigest() in stored
    assert link_key(secret) in stored and request.id in stored


async def test_accept_one_slot(meetings: Meetings) -> None:
    request, secret = await submit(meetings)
    # The exhibitor may name the slot in any offset; the requester's own form is kept.
    accepted = await meetings.accept(
        "cn-hydrogen-01", request.id, datetime.fromisoformat("2020-12-07T07:15:00Z"), now=NOW
    )
    assert accepted.status is ACCEPTED and accepted.decided == NOW
    assert accepted.accepted_slot is not None and accepted.accepted_slot.isoformat() == SLOTS[1]
    assert await meetings.by_secret(secret) == accepted
    assert await meetings.counts("cn-hydrogen-01") == {"pending": 0, "accepted": 1, "declined": 0}


async def test_a_slot_not_proposed_changes_nothing(meetings: Meetings) -> None:
    request, _ = await submit(meetings)
    other = datetime.fromisoformat("2020-12-07T16:00:00+08:00")
    assert await code_of(meetings.accept("cn-hydrogen-01", request.id, other, now=NOW)) == "meeting.invalid"
    assert (await meetings.get("cn-hydrogen-01", request.id)).status is PENDING
    # The refused slot did not use up the decision.
    slot = request.slots[0]
    assert (await meetings.accept("cn-hydrogen-01", request.id, slot, now=NOW)).accepted_slot == slot


@pytest.mark.parametrize("first", ["accept", "decline"])
@pytest.mark.parametrize("second", ["accept", "decline"])
async def test_a_decision_is_final(meetings: Meetings, first: str, second: str) -> None:
    request, secret = await submit(meetings)

    def decide(how: str) -> Awaitable[MeetingRequest]:
        if how == "accept":
            return meetings.accept("cn-hydrogen-01", request.id, request.slots[2], now=NOW)
        return meetings.decline("cn-hydrogen-01", request.id, "Fully booked", now=NOW)

    decided = await decide(first)
    assert await code_of(decide(second)) == "meeting.already_decided"
    assert await meetings.by_secret(secret) == decided
    counts = {"pending": 0, "accepted": 0, "declined": 0} | {
        {"accept": "accepted", "decline": "declined"}[first]: 1
    }
    assert await meetings.counts("cn-hydrogen-01") == counts


async def test_decline_with_and_without_a_reason(meetings: Meetings) -> None:
    one, _ = await submit(meetings)
    two, _ = await submit(meetings)
    declined = await meetings.decline("cn-hydrogen-01", one.id, "Fully booked", now=NOW)
    assert (declined.status, declined.decline_reason, declined.accepted_slot) == (
        DECLINED,
        "Fully booked",
        None,
    )
    assert (await meetings.decline("cn-hydrogen-01", two.id, None, now=NOW)).decline_reason is None
    assert await meetings.counts("cn-hydrogen-01") == {"pending": 0, "accepted": 0, "declined": 2}


async def test_requests_belong_to_their_exhibit(meetings: Meetings) -> None:
    request, _ = await submit(meetings, "cn-hydrogen-01")
    slot = request.slots[0]
    for exhibit, request_id in [("de-solar-01", request.id), ("cn-hydrogen-01", "ffffffffffffffff")]:
        assert await code_of(meetings.get(exhibit, request_id)) == "meeting.unknown"
        assert await code_of(meetings.accept(exhibit, request_id, slot, now=NOW)) == "meeting.unknown"
        assert await code_of(meetings.decline(exhibit, request_id, None, now=NOW)) == "meeting.unknown"
    for malformed in ["", "../meeting", "0123456789ABCDEF", request.id + "0", "meeting:" + request.id]:
        assert await code_of(meetings.get("cn-hydrogen-01", malformed)) == "meeting.unknown"
    assert await meetings.of_exhibit("de-solar-01") == []


async def test_unknown_and_malformed_secrets(meetings: Meetings) -> None:
    _, secret = await submit(meetings)
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for candidate in [wrong, "", secret + "x", secret[:-1], secret[:-1] + "/", link_key(secret)]:
        assert await code_of(meetings.by_secret(candidate)) == "meeting.unknown"


async def test_list_in_order_and_by_status(meetings: Meetings) -> None:
    made = [(await submit(meetings, name=f"Requester {n}"))[0] for n in range(4)]
    await meetings.accept("cn-hydrogen-01", made[1].id, made[1].slots[0], now=NOW)
    await meetings.decline("cn-hydrogen-01", made[2].id, None, now=NOW)
    assert [r.name for r in await meetings.of_exhibit("cn-hydrogen-01")] == [
        f"Requester {n}" for n in range(4)
    ]
    by_status = {
        s: [r.id for r in await meetings.of_exhibit("cn-hydrogen-01", status=s)] for s in MeetingStatus
    }
    assert by_status == {PENDING: [made[0].id, made[3].id], ACCEPTED: [made[1].id], DECLINED: [made[2].id]}


@pytest.mark.parametrize("rival", ["accept", "decline"])
async def test_concurrent_decisions_on_two_instances_have_one_winner(backend: Backend, rival: str) -> None:
    first, second = Meetings(backend.open()), Meetings(backend.open())
    for _round in range(10):
        request, secret = await submit(first)
        outcomes = await asyncio.gather(
            first.accept("cn-hydrogen-01", request.id, request.slots[0], now=NOW),
            second.accept("cn-hydrogen-01", request.id, request.slots[1], now=NOW)
            if rival == "accept"
            else second.decline("cn-hydrogen-01", request.id, None, now=NOW),
            return_exceptions=True,
        )
        won = [o for o in outcomes if isinstance(o, MeetingRequest)]
        lost = [o for o in outcomes if isinstance(o, ForumcastError)]
        assert len(won) == 1 and [e.code for e in lost] == ["meeting.already_decided"]
        assert await second.by_secret(secret) == won[0]
    counts = await first.counts("cn-hydrogen-01")
    assert counts["pending"] == 0 and counts["accepted"] + counts["declined"] == 10


async def test_a_claimed_request_cannot_be_decided_again(backend: Backend) -> None:
    # What a decision that died between its claim and its write leaves behind: the request
    # reads as pending, yet nobody can decide it any more (never two answers).
    store = backend.open()
    meetings = Meetings(store)
    request, secret = await submit(meetings)
    assert await store.add("meeting-decided", request.id) is True
    assert await code_of(meetings.accept("cn-hydrogen-01", request.id, request.slots[0], now=NOW)) == (
        "meeting.already_decided"
    )
    assert await code_of(meetings.decline("cn-hydrogen-01", request.id, None, now=NOW)) == (
        "meeting.already_decided"
    )
    assert (await meetings.by_secret(secret)).status is PENDING
    assert await meetings.counts("cn-hydrogen-01") == {"pending": 1, "accepted": 0, "declined": 0}
