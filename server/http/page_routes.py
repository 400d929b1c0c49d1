"""The browser pages (``/``, ``/speaker``, later ``/producer`` and ``/hall``) and their assets.

Pages and scripts live in ``clients/web`` and are served from the installed package, never
from a CDN: the venue's network and the audience's may have no route to one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

WEB_ROOT = Path(str(resources.files("clients").joinpath("web")))
PAGES = {"/": "index.html", "/speaker": "speaker.html", "/producer": "producer.html", "/hall": "hall.html"}

routes = web.RouteTableDef()


def _page(name: str) -> web.FileResponse:
    response = web.FileResponse(WEB_ROOT / name)
    response.headers["Cache-Control"] = "no-cache"
    return response


async def _serve_page(request: web.Request) -> web.FileResponse:
    return _page(PAGES[request.match_info.route.resource.canonical])  # type: ignore[union-attr]


def setup(app: web.Application) -> None:
    for path in PAGES:
        app.router.add_get(path, _serve_page)
    # Scripts and styles; aiohttp's static handler refuses paths that leave the folder.
    app.router.add_static("/static/", WEB_ROOT, append_version=False)
