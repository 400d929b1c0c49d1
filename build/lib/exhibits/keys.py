"""The exhibition's typed app state (a leaf: the route modules and the mounting import it)."""

from __future__ import annotations

from aiohttp import web

from exhibits.service import Exhibition

EXHIBITION = web.AppKey("exhibition", Exhibition)
