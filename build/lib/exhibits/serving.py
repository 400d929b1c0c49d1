"""Serving model files over HTTP: validators, byte ranges, optional compression and CORS.

What a GLB response promises, and why:

* ``Content-Type: model/gltf-binary`` (registered with :mod:`mimetypes` here too: Python's
  table has no glTF types).
* A strong ``ETag`` (the file's sha256) and ``304`` on ``If-None-Match``. Content-addressed
  files never change, so they are ``Cache-Control: public, max-age=31536000, immutable``;
  the hall scene changes when models do and is revalidated (``no-cache``) instead.
* ``Range`` → ``206`` for one range (phones on slow links resume), ``If-Range`` honoured,
  ``416`` when unsatisfiable. Several ranges, or a Range aiohttp cannot read (another unit,
  ``last < first``, a number too long for ``int()``), get the whole file (RFC 9110 allows it).
* gzip/br only when the request asks: browsers always send ``Accept-Encoding``, and
  three.js shows no download progress for an encoded body (no usable total), so by
  default (``model_compression = "opt-in"``) a file is compressed only for a request with
  ``?compress=1``; ``"auto"`` compresses whenever ``Accept-Encoding`` allows unless
  ``?compress=0``; ``"off"`` never does. Compressed bodies ignore ``Range`` and carry
  ``X-File-Size`` (the decoded size), which three.js's loader uses for its progress.
* CORS for other origins' viewers (``cors_origins``: ``*``, a comma-separated list, or
  empty for none; see :mod:`server.http.cors`), with the headers a range-reading client must
  be able to see.

Bodies come from :class:`BlobCache`, a byte-bounded LRU of file contents and their
compressed variants, so a hot model costs no disk read (nor a ``stat``: a cached sha is
known to exist); misses are read in a thread. This path is the hot one of a busy hall
(``tests/bench/bench_serving.py`` measures it against nginx). A body of ``LARGE_BODY``
bytes or more (a finest LOD) is written after its headers, from a ``memoryview``: joining
headers and body into one buffer, as :class:`web.Response` does before Python 3.12.9,
would allocate and copy megabytes per request. Smaller bodies go in one write, which
costs less than a second ``send``.
"""

from __future__ import annotations

import asyncio
import gzip
import mimetypes
from collections import OrderedDict
from collections.abc import Callable

import brotli  # type: ignore[import-untyped]
from aiohttp import hdrs, web

from server.http.cors import cors_headers, preflight_headers

mimetypes.add_type("model/gltf-binary", ".glb")
mimetypes.add_type("model/gltf+json", ".gltf")

GLB_TYPE = "model/gltf-binary"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
COMPRESSION_MODES = ("off", "opt-in", "auto")
#: What a cross-origin range reader must be able to see.
EXPOSED = "Content-Length, Content-Range, Content-Encoding, ETag, Accept-Ranges, X-File-Size"
#: What a cross-origin client may send (after a preflight).
PREFLIGHT_ALLOWS = "Range, If-None-Match, If-Range"
#: From this size a body is written apart from its headers (one more send, no copy).
LARGE_BODY = 2**20


class BlobCache:
    """Byte-bounded LRU of immutable blobs keyed by (sha256, encoding)."""

    def __init__(self, *, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def has(self, sha: str) -> bool:
        """Whether the file itself is cached (so it exists: content-addressed files stay)."""
        return (sha, "identity") in self._items

    def peek(self, sha: str, encoding: str) -> bytes | None:
        """The blob if cached (and now the most recent), without a coroutine for the hit."""
        key = (sha, encoding)
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    async def get(self, sha: str, encoding: str, load: Callable[[], bytes]) -> bytes:
        """The blob, loaded (and compressed) in a thread on a miss."""
        data = self.peek(sha, encoding)
        if data is not None:
            return data
        key = (sha, encoding)
        if encoding == "identity":
            data = await asyncio.to_thread(load)
        else:
            plain = await self.get(sha, "identity", load)
            data = await asyncio.to_thread(_compress, plain, encoding)
        self._put(key, data)
        return data

    def _put(self, key: tuple[str, str], data: bytes) -> None:
        if len(data) > self.max_bytes // 4:
            return  # too big to be worth evicting everything else for
        self._items[key] = data
        self.size += len(data)
        while self.size > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.size -= len(old)


def _compress(data: bytes, encoding: str) -> bytes:
    if encoding == "br":
        return bytes(brotli.compress(data, quality=6))
    return gzip.compress(data, compresslevel=6, mtime=0)


async def preflight(request: web.Request, origins: str) -> web.Response:
    """Answer a CORS preflight for a model URL (``origins``: the ``cors_origins`` setting)."""
    headers = preflight_headers(origins, request.headers.get("Origin"), request_headers=PREFLIGHT_ALLOWS)
    return web.Response(status=204, headers=headers)


def _pick_encoding(request: web.Request, mode: str) -> str:
    if mode == "off":
        return "identity"
    wanted = request.query.get("compress") if request.query_string else None
    if (mode == "opt-in" and wanted != "1") or (mode == "auto" and wanted == "0"):
        return "identity"
    accepted = _accepted(request.headers.get("Accept-Encoding", ""))
    for encoding in ("br", "gzip"):
        if encoding in accepted:
            return encoding
    return "identity"


def _accepted(header: str) -> set[str]:
    """Codings the client accepts (q > 0)."""
    out = set()
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        q = params.strip()
        if q.startswith("q="):
            try:
                if float(q[2:]) <= 0:
                    continue
            except ValueError:
                continue
        if name:
            out.add(name.strip().lower())
    return out


def _not_modified(request: web.Request, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (quotes excluded) or is ``*``.

    Weak comparison, as RFC 9110 asks for ``If-None-Match``: ``W/"x"`` matches ``"x"``.
    aiohttp parses the list; where it stops at a malformed member, the members before it count.
    """
    etags = request.if_none_match
    if not etags:
        return False
    if len(etags) == 1 and etags[0].value == "*":
        return True
    return any(etag.value == tag for etag in etags)


def _byte_range(request: web.Request, length: int) -> tuple[int, int] | None:
    """(start, end inclusive) of the request's one satisfiable byte range; None: send it all.

    aiohttp's ``http_range`` reads ``bytes=first-last``, ``bytes=first-`` and ``bytes=-suffix``
    (unit case-insensitive) and raises ``ValueError`` for anything else: several ranges,
    another unit, ``last < first``, no number, or a number past Python's int() digit limit.
    Such a Range is ignored, as RFC 9110 14.2 allows, and the whole file sent.
    """
    try:
        span = request.http_range
    except ValueError:
        return None
    start, stop = span.start, span.stop
    if start is None:  # no Range header
        return None
    if start < 0 or (start == 0 and stop is None and "=-" in request.headers[hdrs.RANGE]):
        start = max(0, length + start)  # a suffix; "bytes=-0" (read as 0) selects nothing
        if start == length:
            raise _unsatisfiable(length)
    elif start >= length:
        raise _unsatisfiable(length)
    end = length - 1 if stop is None else min(stop - 1, length - 1)
    return start, end


def _unsatisfiable(length: int) -> web.HTTPRequestRangeNotSatisfiable:
    return web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{length}"})


async def serve_blob(
    request: web.Request,
    *,
    sha: str,
    load: Callable[[], bytes],
    cache: BlobCache,
    immutable: bool,
    compression: str,
    cors: str,
    content_type: str = GLB_TYPE,
) -> web.StreamResponse:
    """The response for one content-addressed blob, with every rule of the module docstring."""
    encoding = _pick_encoding(request, compression)
    etag = f'"{sha}"' if encoding == "identity" else f'"{sha}-{encoding}"'
    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE if immutable else REVALIDATE,
        "Accept-Ranges": "bytes",
    }
    headers.update(cors_headers(cors, request.headers.get("Origin"), exposed=EXPOSED))
    if compression != "off":
        headers["Vary"] = "Origin, Accept-Encoding" if "Vary" in headers else "Accept-Encoding"
    if _not_modified(request, etag[1:-1]):
        return web.Response(status=304, headers=headers)
    data = cache.peek(sha, encoding) or await cache.get(sha, encoding, load)
    headers["Content-Type"] = content_type
    if encoding != "identity":
        headers["Content-Encoding"] = encoding
        # three.js reads the decoded size from X-File-Size (Content-Length is the encoded
        # one), so a compressed download still shows true progress.
        plain = cache.peek(sha, "identity") or await cache.get(sha, "identity", load)
        headers["X-File-Size"] = str(len(plain))
        return await _respond(request, 200, data, headers)
    span = None
    # If-Range is a strong comparison, so only this exact strong tag keeps the range. (aiohttp's
    # request.if_range reads only the HTTP-date form; a date never matches here, as these
    # responses carry no Last-Modified: the whole file is sent, as RFC 9110 13.1.5 says.)
    if request.headers.get(hdrs.IF_RANGE, etag) == etag:
        try:
            span = _byte_range(request, len(data))
        except web.HTTPRequestRangeNotSatisfiable as exc:
            # The validators and CORS of the file, not its type: the 416's body is text.
            exc.headers.update({k: v for k, v in headers.items() if k != hdrs.CONTENT_TYPE})
            raise
    if span is None:
        return await _respond(request, 200, data, headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return await _respond(request, 206, memoryview(data)[start : end + 1], headers)


async def _respond(
    request: web.Request, status: int, body: bytes | memoryview, headers: dict[str, str]
) -> web.StreamResponse:
    """A small body in one write with its headers; a large one after them, not copied."""
    if len(body) < LARGE_BODY:
        return web.Response(status=status, body=bytes(body), headers=headers)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    if request.method != "HEAD":
        await response.write(body)
    await response.write_eof()
    return response
