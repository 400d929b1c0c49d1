"""The CORS rules shared by model files and LL-HLS, without a server."""

from __future__ import annotations

import pytest

from server.http.cors import Origins, cors_headers, parse_origins, preflight_headers

LISTED = "https://a.example, https://b.example"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("*", Origins(any=True, listed=frozenset())),
        (" https://a.example , *", Origins(any=True, listed=frozenset())),
        (LISTED, Origins(any=False, listed=frozenset({"https://a.example", "https://b.example"}))),
        ("", Origins(any=False, listed=frozenset())),
        (" , ,", Origins(any=False, listed=frozenset())),
    ],
)
def test_the_setting_is_read_once(setting: str, expected: Origins) -> None:
    assert parse_origins(setting) == expected
    assert parse_origins(setting) is parse_origins(setting)


def test_any_origin() -> None:
    assert cors_headers("*", "https://x.example", exposed="Content-Length") == {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Content-Length",
    }
    assert cors_headers("*", "https://x.example") == {"Access-Control-Allow-Origin": "*"}
    assert cors_headers("*", None, exposed="Content-Length") == {}  # same origin, or not a browser


def test_listed_origins_by_name_and_always_vary() -> None:
    assert cors_headers(LISTED, "https://b.example", exposed="ETag") == {
        "Access-Control-Allow-Origin": "https://b.example",
        "Access-Control-Expose-Headers": "ETag",
        "Vary": "Origin",
    }
    # The answer depends on Origin even where it allows nothing: a cache must know.
    assert cors_headers(LISTED, "https://evil.example", exposed="ETag") == {"Vary": "Origin"}
    assert cors_headers(LISTED, None, exposed="ETag") == {"Vary": "Origin"}
    assert cors_headers(LISTED, "https://a.example.evil") == {"Vary": "Origin"}


def test_empty_setting_gives_nothing() -> None:
    assert cors_headers("", "https://a.example", exposed="ETag") == {}
    assert preflight_headers("", "https://a.example", request_headers="Range") == {}


def test_preflight() -> None:
    assert preflight_headers(LISTED, "https://a.example", request_headers="Range, If-Range") == {
        "Access-Control-Allow-Origin": "https://a.example",
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Allow-Headers": "Range, If-Range",
        "Access-Control-Max-Age": "86400",
        "Vary": "Origin",
    }
    assert preflight_headers(LISTED, "https://evil.example", request_headers="Range") == {"Vary": "Origin"}
    anyone = preflight_headers("*", "https://x.example", request_headers="Range")
    assert anyone["Access-Control-Allow-Origin"] == "*" and "Vary" not in anyone
