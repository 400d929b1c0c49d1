"""Hostile client input on a real server: absurd numbers, deep JSON, huge bodies, odd query values.

Each refusal is a 4xx with its dotted code and a short message, and the server goes on
serving the same route normally right after.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from server.clock import ManualClock
from server.http.keys import STREAM_KEYS
from tests.conftest import Serve, at, auth

Client = TestClient[Any, Any]
HUGE_NUMBER = "9" * 5000
DEEP = b"[" * 100_000 + b"]" * 100_000  # 195 KiB: past the size limit too, so also a shallower one:
NESTED = b'{"minutes": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}"
MEGABYTE = json.dumps({"minutes": 5, "pad": "x" * 1_000_000}).encode()
JSON = {"Content-Type": "application/json"}


async def refused(response: aiohttp.ClientResponse, status: int, code: str) -> str:
    """The error's message, after checking the status, the code and that the message is short."""
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == code
    assert 0 < len(error["message"]) < 200, error["message"]
    return str(error["message"])


async def morning(serve: Serve) -> Client:
    return await serve(clock=ManualClock(at("2020-12-06T09:30:00+08:00")))


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (f'{{"minutes": {HUGE_NUMBER}}}'.encode(), 400, "request.bad_json"),
        (b'{"minutes": 100000}', 400, "schedule.bad_delay"),
        (b'{"minutes": -100000}', 400, "schedule.bad_delay"),
        (b'{"minutes": 1e999}', 400, "request.bad_json"),
        (b'{"minutes": NaN}', 400, "request.bad_json"),
        (b'{"minutes": 5.5}', 400, "schedule.bad_delay"),
        (NESTED, 400, "request.bad_json"),
        (b"[" * 60_000, 400, "request.bad_json"),
        (DEEP, 413, "request.too_large"),
        (MEGABYTE, 413, "request.too_large"),
        (b"\xff\xfe{}", 400, "request.bad_json"),
    ],
)
async def test_delay_refuses_absurd_bodies(serve: Serve, body: bytes, status: int, code: str) -> None:
    client = await morning(serve)
    headers = {**auth("producer", "main"), **JSON}
    await refused(await client.post("/api/v1/stages/main/delay", data=body, headers=headers), status, code)
    ok = await client.post("/api/v1/stages/main/delay", json={"minutes": 5}, headers=headers)
    assert ok.status == 200 and (await ok.json())["delay_minutes"] == 5


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"input": "slate", "cut": ' + b"[" * 50_000 + b"}", 400, "request.bad_json"),
        (f'{{"input": "slate", "cut": {HUGE_NUMBER}}}'.encode(), 400, "request.bad_json"),
        (b'{"input": "slate", "cut": ["cached"]}', 400, "program.bad_take"),
        (json.dumps({"input": "x" * 5000}).encode(), 400, "program.bad_take"),
        (b'{"input": 12}', 400, "program.bad_take"),
        (MEGABYTE, 413, "request.too_large"),
    ],
)
async def test_take_refuses_absurd_bodies(serve: Serve, body: bytes, status: int, code: str) -> None:
    client = await morning(serve)
    headers = {**auth("producer", "main"), **JSON}
    message = await refused(
        await client.post("/api/v1/stages/main/take", data=body, headers=headers), status, code
    )
    assert "xxxxxxxxxx" not in message
    ok = await client.post("/api/v1/stages/main/take", json={"input": "slate"}, headers=headers)
    assert ok.status == 200 and (await ok.json())["program"]["mode"] == "manual"


@pytest.mark.parametrize("day", [HUGE_NUMBER, "²", "１", "-1", "0", "9" * 4, "2020-12-06" + "x" * 5000])
async def test_sessions_refuse_absurd_days(serve: Serve, day: str) -> None:
    client = await serve()
    message = await refused(
        await client.get("/api/v1/sessions", params={"day": day}), 400, "schedule.bad_day"
    )
    assert len(day) < 50 or day[:50] not in message  # a long value is cut in the message
    ok = await client.get("/api/v1/sessions", params={"day": "1"})
    assert ok.status == 200 and (await ok.json())["count"] > 0


@pytest.mark.parametrize(
    "params",
    [
        {"page": HUGE_NUMBER},
        {"page": "²"},
        {"page": "0"},
        {"page": "10001"},
        {"page": " 1"},
        {"page": "1_0"},
        {"per_page": HUGE_NUMBER},
        {"per_page": "-1"},
        {"per_page": "201"},
    ],
)
async def test_exhibit_listing_refuses_absurd_pages(serve: Serve, params: dict[str, str]) -> None:
    client = await serve()
    message = await refused(await client.get("/api/v1/exhibits", params=params), 400, "exhibit.bad_query")
    assert HUGE_NUMBER[:100] not in message
    ok = await client.get("/api/v1/exhibits", params={"page": "1", "per_page": "2"})
    assert ok.status == 200 and len((await ok.json())["items"]) == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"visitor": ' + b"[" * 400 + b"]" * 400 + b"}", 400),
        (b'{"visitor": "visitor-ann-0001", "kind": ' + HUGE_NUMBER.encode()[:900] + b"}", 400),
        (b"[" * 1000, 400),
        (MEGABYTE, 413),
    ],
)
async def test_views_refuse_deep_or_huge_bodies(serve: Serve, body: bytes, status: int) -> None:
    client = await serve()
    url = "/api/v1/exhibits/cn-hydrogen-01/views"
    code = "request.too_large" if status == 413 else "request.bad_json"
    await refused(await client.post(url, data=body, headers=JSON), status, code)
    visitor = (await (await client.post("/api/v1/visitors")).json())["visitor"]  # a signed id
    ok = await client.post(url, json={"visitor": visitor, "kind": "detail"})
    assert ok.status == 204


async def test_meeting_requests_and_decisions_refuse_deep_or_huge_bodies(serve: Serve) -> None:
    client = await morning(serve)
    url = "/api/v1/exhibits/cn-hydrogen-01/meeting-requests"
    deep = b'{"slots": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    await refused(await client.post(url, data=deep, headers=JSON), 400, "request.bad_json")
    await refused(await client.post(url, data=MEGABYTE, headers=JSON), 413, "request.too_large")
    await refused(await client.post(url, data=b"x" * 17_000, headers=JSON), 413, "request.too_large")
    too_many = {
        "name": "Li Wei",
        "organisation": "Shenzhen Green Capital",
        "email": "li.wei@green-capital.example.cn",
        "message": "We would like to discuss a pilot.",
        "slots": ["2020-12-07T15:00:00+08:00"] * 500,
    }
    await refused(await client.post(url, json=too_many), 422, "meeting.invalid")
    good = await client.post(url, json=too_many | {"slots": ["2020-12-07T15:00:00+08:00"]})
    assert good.status == 201
    request_id = (await good.json())["id"]
    owner = auth("exhibitor:cn-hydrogen-01")
    accept = f"{url}/{request_id}/accept"
    deep_slot = b'{"slot": ' + b"{" * 3000 + b"}"
    await refused(await client.post(accept, data=deep_slot, headers=owner), 400, "request.bad_json")
    decided = await client.post(accept, json={"slot": "2020-12-07T15:00:00+08:00"}, headers=owner)
    assert decided.status == 200 and (await decided.json())["status"] == "accepted"


async def test_publish_socket_answers_deep_or_huge_control_text_with_bad_control(serve: Serve) -> None:
    client = await serve()
    key = client.app[STREAM_KEYS].key("main-cam")
    ws = await client.ws_connect("/ws/publish/main-cam", params={"key": key})
    tally = await ws.receive_json(timeout=5)
    assert tally["type"] == "tally"
    for text in ("[" * 100_000, '{"type": "ping", "n": ' + "[" * 3 + HUGE_NUMBER[:500] + "]]]}", "x" * 2000):
        await ws.send_str(text)
        event = await ws.receive_json(timeout=5)
        assert event["type"] == "error" and event["code"] == "live.bad_control"
    await ws.send_str('{"type": "ping"}')
    assert (await ws.receive_json(timeout=5)) == {"type": "pong"}
    await ws.close()
    assert (await client.get("/api/v1/stages/main")).status == 200


async def test_hls_counts_refuse_unicode_digits(serve: Serve) -> None:
    client = await morning(serve)
    params = {"_HLS_msn": "²"}
    await refused(await client.get("/live/main/media.m3u8", params=params), 400, "hls.bad_request")
    assert (await client.get("/live/main/media.m3u8")).status in (200, 503)


async def test_a_refused_stream_key_is_not_echoed(serve: Serve) -> None:
    client = await serve()
    guessed = "my-guessed-stream-key-0123456789"
    for params, headers in (({"key": guessed}, {}), ({}, {"Authorization": f"Bearer {guessed}"})):
        response = await client.get("/ws/publish/main-cam", params=params, headers=headers)
        message = await refused(response, 401, "live.bad_key")
        assert guessed not in message


async def raw_request(client: Client, head: bytes) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of a request written byte by byte (clients refuse to send such headers)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(head + b"\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


async def test_undecodable_credentials_are_refused_not_crashed_on(serve: Serve) -> None:
    client = await morning(serve)
    bad = b"Authorization: Bearer \xff\xfe.\xc3.\xed\xa0\x80"
    status, body = await raw_request(client, b"POST /api/v1/stages/main/delay HTTP/1.1\r\n" + bad)
    assert (status, body["error"]["code"]) == (401, "auth.invalid_token")
    status, body = await raw_request(client, b"GET /ws/publish/main-cam HTTP/1.1\r\n" + bad)
    assert (status, body["error"]["code"]) == (401, "live.bad_key")
    ok = await client.post("/api/v1/stages/main/delay", json={"minutes": 5}, headers=auth("producer", "main"))
    assert ok.status == 200
