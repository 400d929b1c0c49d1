"""Mounting the exhibition on the server: typed app state, lifetimes and routes.

``setup(app)`` is called by :func:`server.http.app.create_app`. The exhibition's state
lives under :data:`EXHIBITION`; the store, metrics and tokens are the server's.
"""

from __future__ import annotations

from aiohttp import web

from exhibits.service import Exhibition

EXHIBITION = web.AppKey("exhibition", Exhibition)
