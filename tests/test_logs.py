"""The log as an operator reads it: one line per record, nothing a client sent can forge a
line, credentials masked in every logger, files logged with their real status; and the
``Server`` header of every response."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from server.http.keys import STREAM_KEYS
from server.logs import escape_controls, log_handler, mask_secrets
from tests.conftest import Serve

TIMESTAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "


@contextmanager
def captured(fmt: str = "text") -> Iterator[io.StringIO]:
    """Everything logged meanwhile, written as ``forumcast serve --log-format fmt`` writes it."""
    stream = io.StringIO()
    handler = log_handler(fmt, stream)
    root = logging.getLogger()
    level, access = root.level, logging.getLogger("aiohttp.access")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    access.setLevel(logging.WARNING)  # as setup_logging does: ours is the access log
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        access.setLevel(logging.NOTSET)


def access_lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if " forumcast.http: " in line]


FORGED = "%0A2020-12-06 09:30:00,000 INFO    forumcast.http: GET /admin 200 0.1ms%0D"


async def test_a_query_with_newlines_and_a_token_is_one_masked_line(serve: Serve) -> None:
    client = await serve()
    paths = [
        f"/api/v1/sessions?tz=UTC{FORGED}&token=abc.def.ghi",
        f"/api/v1/schedule.ics?%74oken=leaked-1;key=leaked-2&note={FORGED}",
        f"/api/v1/event?tz={FORGED}",
        f"/nothing{FORGED}",
    ]
    with captured() as stream:
        statuses = [(await client.get(path)).status for path in paths]
    assert statuses == [400, 401, 400, 404]  # %74oken is a token too: refused, and masked
    text = stream.getvalue()
    assert len(text.splitlines()) == len(paths)  # one line per request, nothing else
    lines = access_lines(stream)
    assert len(lines) == len(paths)
    assert all(re.match(TIMESTAMP, line) for line in lines)
    assert all("%0A2020-12-06" in line for line in lines)  # the newline stays percent-encoded
    assert "token=***" in lines[0] and "%0A2020-12-06" in lines[0]
    assert "token=***;key=***&note=%0A2020" in lines[1]
    assert "abc.def" not in text and "leaked" not in text
    assert (await client.get("/api/v1/event")).status == 200


async def test_every_logger_masks_credentials_and_escapes_control_characters() -> None:
    log = logging.getLogger("forumcast.test")
    with captured() as stream:
        log.warning("publisher said %s", "hello\nworld\r\x1b[2J\u2028")
        log.warning("retrying GET /x?key=%s with Authorization: Bearer %s", "s3cret-key", "eyJ.aaa.bbb")
        log.info("link /api/v1/meeting-requests/%s and /hall#request=%s", "AbC_123-xyz", "AbC_123-xyz")
        try:
            raise ValueError("bad token=tok-123\nFAKE LINE")
        except ValueError:
            log.exception("it broke")
    lines = stream.getvalue().splitlines()
    records = [line for line in lines if not line.startswith("    ")]
    assert len(records) == 4
    assert records[0].endswith("publisher said hello\\nworld\\r\\x1b[2J\\u2028")
    assert "key=*** with Authorization: Bearer ***" in records[1]
    assert records[2].endswith("link /api/v1/meeting-requests/*** and /hall#request=***")
    assert all(line.startswith("    ") for line in lines[4:])  # the traceback, indented
    assert any("ValueError: bad token=***" in line for line in lines)
    text = stream.getvalue()
    assert "s3cret" not in text and "eyJ" not in text and "AbC_123" not in text and "tok-123" not in text


async def test_json_lines_mask_and_stay_one_line() -> None:
    log = logging.getLogger("forumcast.test")
    with captured("json") as stream:
        log.warning("value %s", "a\nb token=zzz")
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["msg"] == "value a\nb token=***"


def test_mask_and_escape_helpers() -> None:
    assert mask_secrets("GET /s?token=a.b&x=1 key=k;a=1") == "GET /s?token=***&x=1 key=***;a=1"
    kept = "stream_key=visible keyboard=1"
    assert mask_secrets(f"{kept} Bearer zz") == f"{kept} Bearer ***"
    assert escape_controls("a\tb\x00\x85") == "a\\tb\\x00\\x85"


async def test_files_are_logged_with_their_real_status(serve: Serve) -> None:
    client = await serve()
    with captured() as stream:
        missing = await client.get("/static/no-such-file.js")
        present = await client.get("/static/player.js")
        unchanged = await client.get(
            "/static/player.js", headers={"If-Modified-Since": present.headers["Last-Modified"]}
        )
        page = await client.get("/hall")
    assert (missing.status, present.status, unchanged.status, page.status) == (404, 200, 304, 200)
    lines = access_lines(stream)
    assert len(lines) == 4
    assert " GET /static/no-such-file.js 404 " in lines[0]
    assert " GET /static/player.js 200 " in lines[1]
    assert " GET /static/player.js 304 " in lines[2]
    assert " GET /hall 200 " in lines[3]
    metrics = await (await client.get("/metrics")).text()
    counted = [line for line in metrics.splitlines() if line.startswith("forumcast_http_requests_total")]
    assert any('status="404"' in line and "/static" in line for line in counted), counted
    assert any('status="304"' in line and "/static" in line for line in counted), counted


async def test_no_response_names_the_server_library(serve: Serve) -> None:
    client = await serve()
    responses = [
        await client.get("/api/v1/event"),
        await client.get("/static/player.js"),
        await client.get("/static/no-such-file.js"),
        await client.get("/no/such/route"),
        await client.delete("/api/v1/event"),
        await client.post("/api/v1/stages/main/delay", json={"minutes": 5}),
        await client.get("/hall"),
    ]
    key = client.app[STREAM_KEYS].key("main-cam")
    ws = await client.ws_connect("/ws/publish/main-cam", params={"key": key})
    await ws.close()
    assert [r.status for r in responses] == [200, 200, 404, 404, 405, 401, 200]
    for response in responses:
        assert response.headers["Server"] == "forumcast"
    assert ws._response is not None and ws._response.headers["Server"] == "forumcast"
