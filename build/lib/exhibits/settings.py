"""The exhibition's settings in one object, each default stated once.

:class:`~server.config.Config` takes its exhibition defaults from here and
:func:`exhibits.app.open_exhibition` turns the configured values into one
:class:`ExhibitionSettings` for :class:`~exhibits.service.Exhibition`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Largest model upload, bytes (413 ``model.too_large`` above).
MAX_UPLOAD_BYTES = 100 * 2**20
#: Most triangles an uploaded model may have.
MAX_TRIANGLES = 5_000_000
#: Worker processes for 3D ingest and the hall scene.
INGEST_WORKERS = 2
#: Memory for hot model files (an LRU of bodies and their compressed forms), bytes.
MODEL_CACHE_BYTES = 256 * 2**20
#: Seconds between looks for models stored by another process (the CLI).
RESCAN_SECONDS = 5.0
#: Unfinished ingest jobs one exhibit may have (429 ``model.busy`` above).
MAX_JOBS_PER_EXHIBITOR = 2
#: Ingest jobs waiting for a worker in total (429 ``ingest.queue_full`` above).
MAX_QUEUED_JOBS = 16
#: Largest model file (a LOD, the hall scene) shared through Redis, bytes (``model.too_large``
#: above; see :mod:`exhibits.shared` for why Redis strings are kept this small).
MAX_SHARED_BLOB_BYTES = 32 * 2**20
#: Seconds between looks for models stored by other instances (a GET of a counter), with Redis.
SHARED_RESCAN_SECONDS = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExhibitionSettings:
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_triangles: int = MAX_TRIANGLES
    workers: int = INGEST_WORKERS
    cache_bytes: int = MODEL_CACHE_BYTES
    rescan_seconds: float = RESCAN_SECONDS
    max_jobs_per_exhibitor: int = MAX_JOBS_PER_EXHIBITOR
    max_queued_jobs: int = MAX_QUEUED_JOBS
    max_shared_blob_bytes: int = MAX_SHARED_BLOB_BYTES
    shared_rescan_seconds: float = SHARED_RESCAN_SECONDS
