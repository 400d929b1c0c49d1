"""The security headers of the browser pages and their static files.

Owns the Content-Security-Policy (scripts only from our own files, no inline script or
handler, no inline style), who may frame a page (``frame_ancestors``), which page may ask
for the camera and microphone (``Permissions-Policy``), ``nosniff`` and ``no-referrer``
(the pages carry tokens and stream keys in their URLs until they clear them). Pure: the
routes ask :func:`headers_for` for a path's headers and add them to the response.

* ``frame_ancestors`` is a space-separated list of CSP sources (``https://www.example.org``,
  ``https://*.example.org``, ``'self'``) or ``'none'``/empty. It applies to the pages an
  organiser may embed (:data:`EMBEDDABLE`: the viewer and the hall); the speaker and producer
  pages are never framed, so a take or a go-live cannot be clickjacked. ``X-Frame-Options:
  DENY`` goes with ``'none'`` only (it has no way to name origins).
* The one inline script is the hall's import map (browsers load no external one): it is
  allowed by its hash, computed from the page file, so editing it needs nothing here.
* Camera and microphone are allowed to the pages in :data:`CAPTURING` and denied to the
  rest; a new capturing page needs only its path added there.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping

NONE = "'none'"
#: Pages that may capture the camera and microphone (``/interpreter`` is to come).
CAPTURING = frozenset({"/speaker", "/interpreter"})
#: Pages that may be framed by the origins ``frame_ancestors`` lists; the others never are.
EMBEDDABLE = frozenset({"/", "/hall"})

# What the pages load: our own scripts and styles; pictures from the page, canvases (data:)
# and GLB textures (blob:, which GLTFLoader also fetches); video from MediaSource (blob:) and
# the camera (mediastream:); the API and WebSockets of this host. hls.js runs without its
# worker (enableWorker: false), so workers stay at default-src.
_DIRECTIVES = (
    ("default-src", "'self'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data: blob:"),
    ("media-src", "'self' blob: mediastream:"),
    ("connect-src", "'self' ws: wss: blob:"),
    ("object-src", NONE),
    ("base-uri", NONE),
    ("form-action", "'self'"),
)
_SOURCE = re.compile(
    r"'self'|[a-z][a-z0-9+.-]*:"  # a keyword or a scheme (https:)
    r"|(?:[a-z][a-z0-9+.-]*://)?(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::(?:[0-9]{1,5}|\*))?"
    r"(?:/[A-Za-z0-9._~%!$&()*+=:@/-]*)?",  # [scheme://][*.]host[:port][/path]
    re.IGNORECASE,
)
_IMPORT_MAP = re.compile(r"<script type=\"importmap\">(.*?)</script>", re.DOTALL)


def parse_frame_ancestors(setting: str) -> tuple[str, ...]:
    """The sources of a ``frame_ancestors`` setting; ``()`` for ``'none'`` or empty.

    Raises ValueError naming the first source that is not a CSP source expression (a ``;``
    or a comma would end the directive and let the setting write the policy)."""
    sources = tuple(setting.split())
    if sources in ((), (NONE,)):
        return ()
    for source in sources:
        if not _SOURCE.fullmatch(source):
            raise ValueError(
                f"{source!r} is not an origin like https://www.example.org (list them separated by spaces)"
            )
    return sources


def inline_hashes(html: str) -> tuple[str, ...]:
    """The CSP hashes of a page's import maps (its only inline scripts)."""
    return tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _IMPORT_MAP.findall(html)
    )


def content_security_policy(*, hashes: Iterable[str] = (), frame_ancestors: Iterable[str] = ()) -> str:
    directives = dict(_DIRECTIVES)
    directives["script-src"] = " ".join(["'self'", *hashes])
    directives["frame-ancestors"] = " ".join(frame_ancestors) or NONE
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def headers_for(path: str, *, frame_ancestors: tuple[str, ...], hashes: Iterable[str] = ()) -> dict[str, str]:
    """The security headers of the page or static file at ``path``."""
    framers = frame_ancestors if path in EMBEDDABLE else ()
    capture = "(self)" if path in CAPTURING else "()"
    headers = {
        "Content-Security-Policy": content_security_policy(hashes=hashes, frame_ancestors=framers),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": f"camera={capture}, microphone={capture}",
    }
    if not framers:
        headers["X-Frame-Options"] = "DENY"
    return headers


def page_headers(pages: Mapping[str, str], *, frame_ancestors: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Each page's headers, from its path and its HTML (for the hashes of its import maps)."""
    return {
        path: headers_for(path, frame_ancestors=frame_ancestors, hashes=inline_hashes(html))
        for path, html in pages.items()
    }
