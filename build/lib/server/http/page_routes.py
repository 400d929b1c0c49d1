"""The browser pages (``/``, ``/speaker``, ``/producer``, ``/hall``) and their assets.

Pages and scripts live in ``clients/web`` and are served from the installed package, never
from a CDN: the venue's network and the audience's may have no route to one. Every page and
static file carries the security headers of :mod:`server.http.page_headers`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

from server.http.keys import CONFIG, PAGE_HEADERS
from server.http.page_headers import headers_for, page_headers, parse_frame_ancestors

WEB_ROOT = Path(str(resources.files("clients").joinpath("web")))
PAGES = {"/": "index.html", "/speaker": "speaker.html", "/producer": "producer.html", "/hall": "hall.html"}
STATIC = "/static/"

routes = web.RouteTableDef()


async def _serve_page(request: web.Request) -> web.FileResponse:
    path = request.match_info.route.resource.canonical  # type: ignore[union-attr]
    response = web.FileResponse(WEB_ROOT / PAGES[path])
    response.headers["Cache-Control"] = "no-cache"
    return response


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    """Add the headers to every answer under a page's path or /static/, errors included."""
    headers = request.app[PAGE_HEADERS]
    path = request.path if request.path in headers else STATIC if request.path.startswith(STATIC) else None
    if path is not None:
        response.headers.update(headers[path])


def setup(app: web.Application) -> None:
    framers = parse_frame_ancestors(app[CONFIG].frame_ancestors)
    html = {path: (WEB_ROOT / name).read_text(encoding="utf-8") for path, name in PAGES.items()}
    app[PAGE_HEADERS] = {
        **page_headers(html, frame_ancestors=framers),
        STATIC: headers_for(STATIC, frame_ancestors=()),
    }
    for path in PAGES:
        app.router.add_get(path, _serve_page)
    # Scripts and styles; aiohttp's static handler refuses paths that leave the folder.
    app.router.add_static(STATIC, WEB_ROOT, append_version=False)
    app.on_response_prepare.append(_secure)
