"""Request bodies and query numbers: the one place client JSON and numbers are read, with limits.

Every handler that takes a JSON body reads it with :func:`read_json` (or :func:`read_object`
where it wants an object), and the publish WebSocket's text frames go through
:func:`parse_json`. What a client can send is bounded before anything is built from it:

- size: at most ``max_bytes`` (default :data:`MAX_BODY`, 64 KiB), counted while reading, so
  a wrong or missing ``Content-Length`` does not help; 413 ``request.too_large`` past it;
- nesting: at most ``max_depth`` (default :data:`MAX_DEPTH`, 32) arrays/objects deep,
  measured by a scan without recursion *before* parsing, so ``[[[[…`` 100 000 deep costs
  one pass over the text and never reaches Python's recursion limit;
- numbers: integers of at most :data:`MAX_DIGITS` digits (Python refuses to convert
  more than 4 300 with a ``ValueError``, and long ones cost quadratic time), finite floats.

All of these, and text that is not UTF-8 JSON, are 400 ``request.bad_json``.
:func:`query_int` is the same for a whole number in the query string.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from aiohttp import web

from server.errors import ForumcastError

#: Largest JSON body a handler reads unless it states its own limit.
MAX_BODY = 64 * 1024
#: Deepest nesting of arrays and objects accepted in a JSON text.
MAX_DEPTH = 32
#: Most digits a JSON integer (or a query number) may have.
MAX_DIGITS = 20

# A JSON string (escapes included) or any one character that is not a bracket: what the
# depth scan skips. Brackets inside strings do not nest anything.
_NOT_NESTING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{}"]+', re.S)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# ASCII digits only: str.isdigit() also takes '²', which int() refuses.
_WHOLE = re.compile(rf"-?[0-9]{{1,{MAX_DIGITS}}}")


def shown(value: str, *, limit: int = 40) -> str:
    """``value`` quoted for an error message, cut at ``limit`` characters (clients may send megabytes)."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (0 for a scalar), without recursion.

    Counts brackets outside strings; on text that is not JSON the count may be anything,
    but then the parser refuses it anyway.
    """
    brackets = _NOT_NESTING.sub("", text)
    return max(accumulate(_STEP.get(c, 0) for c in brackets), default=0)


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"a number has more than {MAX_DIGITS} digits")
    return int(digits)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number is too large")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``data`` (UTF-8 JSON) parsed within the limits, or ``request.bad_json`` saying why not."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ForumcastError("request.bad_json", "the body must be UTF-8 JSON") from None
    if json_depth(text) > max_depth:
        raise ForumcastError("request.bad_json", f"the JSON nests deeper than {max_depth} levels")
    try:
        return json.loads(
            text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except json.JSONDecodeError as exc:
        raise ForumcastError("request.bad_json", f"the body is not JSON ({exc.msg} at {exc.pos})") from None
    except (ValueError, RecursionError) as exc:  # from the number hooks; RecursionError: never, but cheap
        raise ForumcastError("request.bad_json", f"the body is not acceptable JSON: {exc}") from None


async def read_body(request: web.Request, *, max_bytes: int = MAX_BODY) -> bytes:
    """The request's body, at most ``max_bytes`` of it (413 ``request.too_large`` past that)."""
    too_large = ForumcastError("request.too_large", f"the body must be at most {max_bytes} bytes")
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    return bytes(body)


async def read_json(
    request: web.Request, *, max_bytes: int = MAX_BODY, max_depth: int = MAX_DEPTH, empty: Any = None
) -> Any:
    """The request's JSON body within the limits; ``empty`` for a blank body when it is given."""
    body = await read_body(request, max_bytes=max_bytes)
    if not body.strip() and empty is not None:
        return empty
    return parse_json(body, max_depth=max_depth)


def require_json(request: web.Request) -> None:
    """415 ``request.unsupported_media_type`` unless the body is declared ``application/json``.

    A form or ``text/plain`` post is what any web site can make its visitors' browsers send
    without asking; a JSON one needs a CORS preflight.
    """
    if request.content_type != "application/json":
        raise ForumcastError(
            "request.unsupported_media_type",
            f"the body must be sent as application/json, not {request.content_type or 'nothing'}",
        )


async def read_object(
    request: web.Request, *, code: str, example: str, max_bytes: int = MAX_BODY, empty: bool = False
) -> dict[str, Any]:
    """The request's JSON body, which must be an object (``code``, naming ``example``, if not).

    ``empty``: a request without a body counts as ``{}``.
    """
    payload = await read_json(request, max_bytes=max_bytes, empty={} if empty else None)
    if not isinstance(payload, dict):
        raise ForumcastError(code, f"the body must be a JSON object like {example}")
    return payload


def query_int(request: web.Request, name: str, *, code: str, low: int, high: int, default: int) -> int:
    """The whole number ``low..high`` in the query's ``name`` (``default`` if absent), or ``code``."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _WHOLE.fullmatch(raw):
        raise ForumcastError(code, f"{name} must be a whole number, got {shown(raw)}")
    value = int(raw)
    if not low <= value <= high:
        raise ForumcastError(code, f"{name} must be between {low} and {high}, got {value}")
    return value
