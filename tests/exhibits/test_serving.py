"""Model files over real HTTP: types, validators, ranges, opt-in compression, CORS."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from typing import Any

import aiohttp
import brotli
import pytest

from exhibits.keys import EXHIBITION
from exhibits.serving import _accepted
from tests.conftest import Serve

BLOB = bytes(range(256)) * 400  # 102,400 bytes that compress well


async def stored(serve: Serve, **settings: Any) -> tuple[Any, str]:
    client = await serve(**settings)
    sha, _ = client.app[EXHIBITION].models.put(BLOB)
    return client, sha


async def raw_get(client: Any, path: str, **headers: str) -> tuple[aiohttp.ClientResponse, bytes]:
    """A GET whose body is not decompressed, so encodings can be checked byte for byte."""
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(client.make_url(path), headers=headers) as response,
    ):
        return response, await response.read()


def test_mime_types_are_registered() -> None:
    assert mimetypes.guess_type("x.glb")[0] == "model/gltf-binary"
    assert mimetypes.guess_type("x.gltf")[0] == "model/gltf+json"


async def test_full_file_with_caching_headers(serve: Serve) -> None:
    client, sha = await stored(serve)
    response, body = await raw_get(client, f"/models/{sha}.glb", **{"Accept-Encoding": "gzip, br"})
    assert response.status == 200 and body == BLOB
    assert response.headers["Content-Type"] == "model/gltf-binary"
    assert response.headers["ETag"] == f'"{sha}"' and hashlib.sha256(body).hexdigest() == sha
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["Accept-Ranges"] == "bytes"
    # Browsers always send Accept-Encoding: without the opt-in the body stays identity, so
    # three.js can show progress against Content-Length.
    assert "Content-Encoding" not in response.headers and response.headers["Content-Length"] == str(len(BLOB))


async def test_if_none_match_gives_304(serve: Serve) -> None:
    client, sha = await stored(serve)
    for header in (f'"{sha}"', f'"other", W/"{sha}"', "*"):
        response = await client.get(f"/models/{sha}.glb", headers={"If-None-Match": header})
        assert response.status == 304 and await response.read() == b""
        assert response.headers["ETag"] == f'"{sha}"'
    response = await client.get(f"/models/{sha}.glb", headers={"If-None-Match": '"other"'})
    assert response.status == 200


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100000-", 100000, len(BLOB) - 1),
        ("bytes=-10", len(BLOB) - 10, len(BLOB) - 1),
        ("bytes=102000-999999", 102000, len(BLOB) - 1),
    ],
)
async def test_ranges(serve: Serve, header: str, start: int, end: int) -> None:
    client, sha = await stored(serve)
    response = await client.get(f"/models/{sha}.glb", headers={"Range": header})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(BLOB)}"
    assert await response.read() == BLOB[start : end + 1]


async def test_unsatisfiable_and_stale_ranges(serve: Serve) -> None:
    client, sha = await stored(serve)
    response = await client.get(f"/models/{sha}.glb", headers={"Range": f"bytes={len(BLOB)}-"})
    assert response.status == 416 and response.headers["Content-Range"] == f"bytes */{len(BLOB)}"
    # If-Range with another validator: the range is ignored and the whole file sent.
    response = await client.get(f"/models/{sha}.glb", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert response.status == 200 and await response.read() == BLOB
    # Several ranges: the whole file is a valid answer.
    response = await client.get(f"/models/{sha}.glb", headers={"Range": "bytes=0-9,20-29"})
    assert response.status == 200 and len(await response.read()) == len(BLOB)


async def test_compression_only_when_asked(serve: Serve) -> None:
    client, sha = await stored(serve)
    response, body = await raw_get(client, f"/models/{sha}.glb?compress=1", **{"Accept-Encoding": "gzip, br"})
    assert response.headers["Content-Encoding"] == "br" and brotli.decompress(body) == BLOB
    assert response.headers["X-File-Size"] == str(len(BLOB))  # three.js's progress total
    assert response.headers["ETag"] == f'"{sha}-br"' and "Accept-Encoding" in response.headers["Vary"]
    assert len(body) < len(BLOB) // 10
    response, body = await raw_get(client, f"/models/{sha}.glb?compress=1", **{"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip" and gzip.decompress(body) == BLOB
    response, body = await raw_get(client, f"/models/{sha}.glb?compress=1", **{"Accept-Encoding": "br;q=0"})
    assert "Content-Encoding" not in response.headers and body == BLOB


async def test_auto_compression_can_be_refused_per_request(serve: Serve) -> None:
    client, sha = await stored(serve, model_compression="auto")
    response, body = await raw_get(client, f"/models/{sha}.glb", **{"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip" and gzip.decompress(body) == BLOB
    response, body = await raw_get(client, f"/models/{sha}.glb?compress=0", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers and body == BLOB


async def test_compression_off(serve: Serve) -> None:
    client, sha = await stored(serve, model_compression="off")
    response, body = await raw_get(client, f"/models/{sha}.glb?compress=1", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers and "Vary" not in response.headers and body == BLOB


async def test_cors_any_origin_and_preflight(serve: Serve) -> None:
    client, sha = await stored(serve)
    response = await client.get(f"/models/{sha}.glb", headers={"Origin": "https://viewer.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Range" in response.headers["Access-Control-Expose-Headers"]
    response = await client.options(
        f"/models/{sha}.glb",
        headers={"Origin": "https://viewer.example", "Access-Control-Request-Headers": "range"},
    )
    assert response.status == 204 and "Range" in response.headers["Access-Control-Allow-Headers"]
    hall = await client.options("/hall.glb", headers={"Origin": "https://viewer.example"})
    assert hall.status == 204 and hall.headers["Access-Control-Allow-Origin"] == "*"


async def test_cors_listed_origins_only(serve: Serve) -> None:
    client, sha = await stored(serve, cors_origins="https://a.example, https://b.example")
    response = await client.get(f"/models/{sha}.glb", headers={"Origin": "https://b.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "Origin" in response.headers["Vary"]
    response = await client.get(f"/models/{sha}.glb", headers={"Origin": "https://evil.example"})
    assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers


async def test_cors_disabled(serve: Serve) -> None:
    client, sha = await stored(serve, cors_origins="")
    response = await client.get(f"/models/{sha}.glb", headers={"Origin": "https://a.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_unknown_models_are_404_json(serve: Serve) -> None:
    client = await serve()
    for path in (f"/models/{'0' * 64}.glb", "/models/abc.glb", "/models/..%2Fexhibits.glb"):
        response = await client.get(path)
        assert response.status == 404
        assert (await response.json())["error"]["code"] in ("model.unknown", "request.not_found")


async def test_head_has_headers_and_no_body(serve: Serve) -> None:
    client, sha = await stored(serve)
    response = await client.head(f"/models/{sha}.glb")
    assert response.status == 200 and response.headers["Content-Length"] == str(len(BLOB))
    assert await response.read() == b""


@pytest.mark.parametrize(
    ("header", "status", "content_range"),
    [
        # Not a range aiohttp reads: ignored (RFC 9110 14.2 allows it), the whole file sent.
        ("items=0-1", 200, None),
        ("bytes=-", 200, None),
        ("bytes=5-4", 200, None),
        ("bytes=abc-", 200, None),
        ("bytes=0-9, 20-29", 200, None),
        # The unit is case-insensitive; a suffix longer than the file is the whole file.
        ("BYTES=0-9", 206, "bytes 0-9/{n}"),
        ("bytes=-999999", 206, "bytes 0-{last}/{n}"),
        ("bytes=0-", 206, "bytes 0-{last}/{n}"),
        # Nothing of the file selected.
        ("bytes=-0", 416, "bytes */{n}"),
        ("bytes=999999-", 416, "bytes */{n}"),
        ("bytes=999999-9999999", 416, "bytes */{n}"),
    ],
)
async def test_range_edges(serve: Serve, header: str, status: int, content_range: str | None) -> None:
    client, sha = await stored(serve)
    response = await client.get(f"/models/{sha}.glb", headers={"Range": header})
    assert response.status == status
    expected = content_range and content_range.format(n=len(BLOB), last=len(BLOB) - 1)
    assert response.headers.get("Content-Range") == expected
    if status == 200:
        assert await response.read() == BLOB


async def test_absurd_validators_are_ignored_not_errors(serve: Serve) -> None:
    """A 5,000-digit Range (past Python's int() digit limit) was a 500 on both model URLs."""
    client, sha = await stored(serve)
    digits = "9" * 5000
    for path in (f"/models/{sha}.glb", "/hall.glb"):
        for header in (f"bytes={digits}-", f"bytes=0-{digits}", f"bytes=-{digits}"):
            response = await client.get(path, headers={"Range": header})
            assert response.status == 200, (path, header[:12], response.status)
            assert response.headers["Content-Length"] == str(len(await response.read()))
        # Past aiohttp's 8,190-byte limit for one header line: its parser answers 400.
        response = await client.get(path, headers={"Range": f"bytes={digits}-{digits}"})
        assert response.status == 400
        for header in (f'"{digits}"', 'W/"x", garbage, "y"', "**", '"unterminated'):
            response = await client.get(path, headers={"If-None-Match": header})
            assert response.status == 200, (path, header[:12], response.status)
        date = "Sun, 06 Dec 2020 09:30:00 GMT"
        response = await client.get(path, headers={"Range": "bytes=0-9", "If-Range": date})
        assert response.status == 200  # no Last-Modified here: a date never matches


async def test_if_range_is_a_strong_comparison(serve: Serve) -> None:
    client, sha = await stored(serve)
    path = f"/models/{sha}.glb"
    response = await client.get(path, headers={"Range": "bytes=0-9", "If-Range": f'"{sha}"'})
    assert response.status == 206 and await response.read() == BLOB[:10]
    response = await client.get(path, headers={"Range": "bytes=0-9", "If-Range": f'W/"{sha}"'})
    assert response.status == 200 and await response.read() == BLOB


def test_accepted_encodings() -> None:
    assert _accepted("gzip;q=0.5, br;q=0, identity") == {"gzip", "identity"}


async def test_large_files_full_head_and_ranges(serve: Serve) -> None:
    big = bytes(range(256)) * (5 * 2**20 // 256)  # 5 MiB: above the size sent without copying
    client = await serve()
    sha, _ = client.app[EXHIBITION].models.put(big)
    for _ in range(2):  # a cache miss, then a hit
        response = await client.get(f"/models/{sha}.glb")
        assert response.status == 200 and await response.read() == big
        assert response.headers["Content-Length"] == str(len(big)) and response.headers["ETag"] == f'"{sha}"'
    head = await client.head(f"/models/{sha}.glb")
    assert head.headers["Content-Length"] == str(len(big)) and await head.read() == b""
    part = await client.get(f"/models/{sha}.glb", headers={"Range": "bytes=1048576-3145727"})
    assert part.status == 206 and await part.read() == big[1048576:3145728]
    assert part.headers["Content-Range"] == f"bytes 1048576-3145727/{len(big)}"
