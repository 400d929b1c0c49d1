"""Mounting the exhibition on the server: typed app state, its lifetime and its routes.

``setup(app)`` is called by :func:`server.http.app.create_app` after the store's context,
so the exhibition can count visits and keep meeting requests in the server's store. The
exhibition's own state lives under :data:`EXHIBITION`: the catalog (``catalog`` setting,
else the built-in demo catalog), the model files under ``data_dir``, and the worker pool,
which is started and stopped with the app. With ``redis_url`` the exhibition shares its
models, jobs and hall scene with the event's other instances (:mod:`exhibits.shared`),
on a client of its own (bytes, not text, so it is not the state store's).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from exhibits import engagement_routes, exhibit_routes
from exhibits.catalog import Catalog
from exhibits.catalog_file import load_catalog
from exhibits.demo_catalog import demo_catalog
from exhibits.keys import EXHIBITION
from exhibits.modelstore import ModelStore
from exhibits.pipeline import Limits
from exhibits.service import Exhibition
from exhibits.settings import ExhibitionSettings
from exhibits.shared import SharedExhibition
from server.config import Config
from server.http.keys import CONFIG, EVENT, METRICS, TASKS
from server.metrics import Metrics
from server.store.redis import connect


def configured_catalog(config: Config) -> Catalog:
    """The ``catalog`` file of the settings, else the built-in demo catalog."""
    if config.catalog:
        return Catalog(load_catalog(config.catalog))
    return Catalog(demo_catalog())


def configured_limits(config: Config) -> Limits:
    return Limits(max_upload_bytes=config.max_upload_bytes, max_triangles=config.max_triangles)


def open_shared(config: Config, namespace: str) -> SharedExhibition | None:
    """The exhibition's keys in Redis when ``redis_url`` is set (nothing is dialled here)."""
    if not config.redis_url:
        return None
    return SharedExhibition(
        connect(config.redis_url, decode_responses=False),
        namespace,
        owner=config.instance(),
        max_blob_bytes=config.max_shared_blob_bytes,
    )


def open_exhibition(config: Config, metrics: Metrics, *, namespace: str = "") -> Exhibition:
    """The exhibition the settings describe (the catalog is read here: errors stop the start);
    ``namespace`` (the event's id) names its keys in Redis."""
    return Exhibition(
        configured_catalog(config),
        ModelStore(Path(config.data_dir)),
        metrics=metrics,
        settings=ExhibitionSettings(
            max_upload_bytes=config.max_upload_bytes,
            max_triangles=config.max_triangles,
            workers=config.ingest_workers,
            cache_bytes=config.model_cache_bytes,
            max_jobs_per_exhibitor=config.max_jobs_per_exhibitor,
            max_queued_jobs=config.max_queued_jobs,
            max_shared_blob_bytes=config.max_shared_blob_bytes,
        ),
        shared=open_shared(config, namespace) if namespace else None,
    )


async def _exhibition_ctx(app: web.Application) -> AsyncIterator[None]:
    exhibition = app[EXHIBITION]
    await exhibition.start()
    try:
        if app[CONFIG].demo_models:
            exhibition.build_demo_models()
        tasks = app[TASKS]
        async with (
            tasks.running("exhibition-hall", exhibition.hall_loop),
            tasks.running("exhibition-rescan", exhibition.rescan_loop),
        ):
            yield
    finally:
        await exhibition.close()


def setup(app: web.Application) -> None:
    """Create the exhibition from the app's settings and mount its routes."""
    app[EXHIBITION] = open_exhibition(app[CONFIG], app[METRICS], namespace=app[EVENT].id)
    app.cleanup_ctx.append(_exhibition_ctx)
    exhibit_routes.setup(app)
    engagement_routes.setup(app)
