"""Mounting the exhibition on the server: typed app state, its lifetime and its routes.

``setup(app)`` is called by :func:`server.http.app.create_app` after the store's context,
so the exhibition can count visits and keep meeting requests in the server's store. The
exhibition's own state lives under :data:`EXHIBITION`: the catalog (``catalog`` setting,
else the built-in demo catalog), the model files under ``data_dir``, and the worker pool,
which is started and stopped with the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from exhibits.catalog import Catalog
from exhibits.pipeline import Limits
from exhibits.service import Exhibition
from server.config import Config
from server.metrics import Metrics

EXHIBITION = web.AppKey("exhibition", Exhibition)


def configured_catalog(config: Config) -> Catalog:
    """The ``catalog`` file of the settings, else the built-in demo catalog."""
    from exhibits.catalog_file import load_catalog

    if config.catalog:
        return Catalog(load_catalog(config.catalog))
    from exhibits.demo_catalog import demo_catalog

    return Catalog(demo_catalog())


def configured_limits(config: Config) -> Limits:
    return Limits(max_upload_bytes=config.max_upload_bytes, max_triangles=config.max_triangles)


def open_exhibition(config: Config, metrics: Metrics) -> Exhibition:
    """The exhibition the settings describe (the catalog is read here: errors stop the start)."""
    from exhibits.modelstore import ModelStore

    return Exhibition(
        configured_catalog(config),
        ModelStore(Path(config.data_dir)),
        metrics=metrics,
        limits=configured_limits(config),
        workers=config.ingest_workers,
        cache_bytes=config.model_cache_bytes,
    )


async def _exhibition_ctx(app: web.Application) -> AsyncIterator[None]:
    from server.http.app import CONFIG
    from server.tasks import background

    exhibition = app[EXHIBITION]
    await exhibition.start()
    async with background(exhibition.run(demo_models=app[CONFIG].demo_models), name="forumcast-exhibition"):
        yield


def setup(app: web.Application) -> None:
    """Create the exhibition from the app's settings and mount its routes."""
    from exhibits import api, engagement_api
    from server.http.app import CONFIG, METRICS

    app[EXHIBITION] = open_exhibition(app[CONFIG], app[METRICS])
    app.cleanup_ctx.append(_exhibition_ctx)
    api.setup(app)
    engagement_api.setup(app)
