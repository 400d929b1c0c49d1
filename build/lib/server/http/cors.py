"""CORS for what browser players on other origins fetch: model files and LL-HLS.

Owns the reading of an origins setting (``cors_origins``, ``hls_cors_origins``: ``*``, a
comma-separated list of origins, or empty for no CORS headers at all) and the headers that
follow from it for one request's ``Origin``. Pure functions of strings: the routes pass the
setting and the request's ``Origin``, and add the answer to their own headers.

* ``*`` lets any origin read; the answer does not depend on ``Origin`` so it needs no ``Vary``.
* A list lets only its origins read, by name; such an answer depends on ``Origin``, so it
  carries ``Vary: Origin`` for every request, allowed or not, with an ``Origin`` or without
  (a shared cache that stored the answer to one origin must not give it to another).
* ``Access-Control-Expose-Headers`` names the response headers a player's script must see
  beyond the CORS-safelisted ones (a range reader needs ``Content-Range``, a progress bar
  ``Content-Length``): each caller says which.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

ANY = "*"
#: What the preflight lets a player send, and for how long a browser may keep the answer.
PREFLIGHT_METHODS = "GET, HEAD, OPTIONS"
PREFLIGHT_MAX_AGE = 86400


@dataclass(frozen=True, slots=True)
class Origins:
    """An origins setting, read: any origin, some by name, or none."""

    any: bool
    listed: frozenset[str]

    def allows(self, origin: str) -> bool:
        return self.any or origin in self.listed


@functools.lru_cache(maxsize=16)
def parse_origins(setting: str) -> Origins:
    """``*``, a comma-separated list or empty, read once per distinct setting."""
    names = frozenset(o.strip() for o in setting.split(",") if o.strip())
    if ANY in names:
        return Origins(any=True, listed=frozenset())
    return Origins(any=False, listed=names)


def cors_headers(
    setting: str, origin: str | None, *, exposed: str = "", listed_only: bool = False
) -> dict[str, str]:
    """The CORS headers of a response to a request with ``Origin: origin`` (None: none sent).

    Empty when the setting is empty; only ``Vary`` for a listed setting and an origin it
    does not allow (or no origin). ``listed_only`` (private content, e.g. a closed stage's
    media): never the wildcard, only origins the setting names.
    """
    origins = parse_origins(setting)
    headers: dict[str, str] = {}
    if not origins.any and origins.listed:
        headers["Vary"] = "Origin"
    if origin is None or not origins.allows(origin) or (listed_only and origins.any):
        return headers
    headers["Access-Control-Allow-Origin"] = ANY if origins.any else origin
    if exposed:
        headers["Access-Control-Expose-Headers"] = exposed
    return headers


def preflight_headers(setting: str, origin: str | None, *, request_headers: str) -> dict[str, str]:
    """The headers of the ``204`` answering a preflight (``OPTIONS``) from ``origin``.

    ``request_headers`` is what a request from that origin may send (e.g. ``Range``). For an
    origin that is not allowed, no ``Access-Control-Allow-*`` header: the browser then
    refuses the real request.
    """
    headers = cors_headers(setting, origin)
    if "Access-Control-Allow-Origin" in headers:
        headers["Access-Control-Allow-Methods"] = PREFLIGHT_METHODS
        headers["Access-Control-Allow-Headers"] = request_headers
        headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return headers
