"""URLs from --server, the meaning of refusals and close codes, and the reconnect backoff."""

from __future__ import annotations

import json

import pytest

from clients.connection import (
    Backoff,
    ClientError,
    Verdict,
    classify_close,
    classify_status,
    endpoint,
    publish_url,
    watch_url,
    ws_base,
)


@pytest.mark.parametrize(
    ("server", "base"),
    [
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080"),
        ("https://live.example.org/", "wss://live.example.org"),
        ("https://example.org/forumcast/", "wss://example.org/forumcast"),
        ("ws://host:1234", "ws://host:1234"),
        ("localhost:8080", "ws://localhost:8080"),
    ],
)
def test_ws_base(server: str, base: str) -> None:
    assert ws_base(server) == base


@pytest.mark.parametrize("server", ["ftp://host", "http://", ""])
def test_ws_base_refuses_what_is_not_a_server(server: str) -> None:
    with pytest.raises(ClientError, match="not a server address"):
        ws_base(server)


def test_ids_cannot_change_the_path() -> None:
    assert endpoint("h:1", "ws", "watch", "../admin?x") == "ws://h:1/ws/watch/..%2Fadmin%3Fx"


def test_publish_and_watch_urls() -> None:
    assert publish_url("http://h:8080", "stern-uk") == "ws://h:8080/ws/publish/stern-uk"
    assert (
        publish_url("http://h:8080", "stern-uk", takeover=True)
        == "ws://h:8080/ws/publish/stern-uk?takeover=1"
    )
    assert watch_url("h", stage="main") == "ws://h/ws/watch/main"
    assert watch_url("h", stage="seminar", token="a b") == "ws://h/ws/watch/seminar?token=a+b"
    assert watch_url("h", stage="main", input_id="cam-1", token="t") == "ws://h/ws/watch/input/cam-1?token=t"
    with pytest.raises(ClientError, match="--stage"):
        watch_url("h")


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (None, Verdict.RETRY),
        (1000, Verdict.DONE),
        (1001, Verdict.RETRY),
        (1007, Verdict.FATAL),
        (1009, Verdict.FATAL),
        (1011, Verdict.RETRY),
        (4401, Verdict.FATAL),
        (4404, Verdict.FATAL),
        (4409, Verdict.TAKEN_OVER),
        (4999, Verdict.FATAL),
        (3000, Verdict.RETRY),
    ],
)
def test_close_codes(code: int | None, verdict: Verdict) -> None:
    assert classify_close(code).verdict is verdict


def test_close_reason_is_kept() -> None:
    assert classify_close(1007, "media.missing_tfdt").reason.endswith("(media.missing_tfdt)")


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (401, Verdict.FATAL),
        (403, Verdict.FATAL),
        (404, Verdict.FATAL),
        (409, Verdict.FATAL),
        (503, Verdict.RETRY),
    ],
)
def test_http_statuses(status: int, verdict: Verdict) -> None:
    assert classify_status(status).verdict is verdict


def test_http_refusal_quotes_the_server() -> None:
    body = json.dumps({"error": {"code": "live.bad_key", "message": "wrong stream key"}}).encode()
    outcome = classify_status(401, body)
    assert outcome.reason.endswith("live.bad_key: wrong stream key")
    assert classify_status(409, b"<html>").reason.startswith("input busy")


def test_backoff_doubles_up_to_the_maximum_and_resets() -> None:
    backoff = Backoff(initial=0.5, factor=2, maximum=3)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial=0)
