"""The exhibition as the server holds it: the catalog, each exhibit's model, jobs, the hall.

:class:`Exhibition` ties the pieces together for the HTTP layer and owns their lifetimes
(``start``/``close``, called from the app's cleanup context):

* the exhibits' current models, read from the model store's manifests and re-read every
  few seconds in a thread, so a model ingested by ``forumcast exhibits ingest`` into the
  same data dir shows up without a restart;
* ingest jobs for uploads: admitted within the per-exhibit and queue limits, spooled to
  disk (:mod:`exhibits.spool`), run in the worker pool when their exhibit's turn comes
  (:mod:`exhibits.fair`), committed to the store, their spooled file removed at the end;
* the demo models: each demo exhibit without a current demo model gets its procedural
  model built and run through the pipeline, in the background at start, and cached in
  the data dir (a restart reuses them);
* ``/hall.glb``: rebuilt in a worker whenever a smallest LOD changes (debounced), stored
  content-addressed, and reused across restarts while its inputs are the same
  (:mod:`exhibits.hall_builder`).

With Redis (:mod:`exhibits.shared`) the instances of one event share all of it: model
files are blobs in Redis, fetched once into the local data dir by an instance that lacks
one; the exhibits' manifests are a Redis hash with a version every instance polls; jobs
are mirrored to Redis (:mod:`exhibits.job_mirror`), so any instance answers a job URL; the
demo models and each hall scene are built by one instance under a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from exhibits.catalog import Catalog, Exhibit
from exhibits.hall import HallLayout, layout_hall
from exhibits.hall_builder import HallBuilder
from exhibits.job_mirror import JobMirror
from exhibits.jobs import Busy, Job, Jobs, unknown_job
from exhibits.local_blobs import LocalBlobs
from exhibits.model import IngestResult
from exhibits.modelstore import ModelAsset, ModelStore
from exhibits.pipeline import Limits
from exhibits.serving import BlobCache
from exhibits.settings import ExhibitionSettings
from exhibits.shared import SharedExhibition
from exhibits.spool import Spool, Spooled
from exhibits.workers import Workers, ingest_demo, ingest_upload
from server.errors import ForumcastError
from server.metrics import Metrics

log = logging.getLogger("forumcast.exhibits")

#: Bump when the procedural models or the pipeline change what a demo model looks like.
DEMO_MODELS_VERSION = "demo-1"
UNITS = ("mm", "cm", "m", "in")
UPS = ("y", "z")
#: Seconds between looks for another instance's demo models.
DEMO_POLL_SECONDS = 0.5
#: Seconds a refused upload is told to wait (``Retry-After``): about one small job's run.
RETRY_AFTER = 10


class Exhibition:
    """The catalog and everything attached to its exhibits."""

    def __init__(
        self,
        catalog: Catalog,
        models: ModelStore,
        *,
        metrics: Metrics | None = None,
        settings: ExhibitionSettings | None = None,
        shared: SharedExhibition | None = None,
    ) -> None:
        settings = settings or ExhibitionSettings()
        self.catalog = catalog
        self.models = models
        self.metrics = metrics
        self.limits = Limits(max_upload_bytes=settings.max_upload_bytes, max_triangles=settings.max_triangles)
        self.workers = Workers(processes=settings.workers, metrics=metrics)
        #: Redis, when several instances serve the event (None: this instance alone).
        self.shared = shared
        self.mirror = JobMirror(shared.save_job) if shared is not None else None
        self.jobs = Jobs(on_change=self.mirror.changed if self.mirror is not None else None)
        self.spool = Spool(models.root / "spool")
        self.max_jobs_per_exhibitor = settings.max_jobs_per_exhibitor
        self.max_queued_jobs = settings.max_queued_jobs
        #: Uploads being received, per exhibit: they count against both limits already.
        self._uploading: dict[str, int] = {}
        self.cache = BlobCache(max_bytes=settings.cache_bytes)
        self.layout: HallLayout = layout_hall(list(catalog))
        self.rescan_seconds = settings.rescan_seconds if shared is None else settings.shared_rescan_seconds
        self._assets: dict[str, ModelAsset] = {}
        self._stamps: dict[str, int | None] = {}
        self._shared_version = -1
        self.blobs = LocalBlobs(models, shared)
        self._tasks: set[asyncio.Task[object]] = set()
        self.hall = HallBuilder(
            models=models,
            workers=self.workers,
            layout=self.layout,
            catalog=catalog,
            shared=shared,
            ensure_local=self.blobs.ensure if shared is not None else None,
        )
        self._hall_wanted = asyncio.Event()
        self.demo_pending = 0
        self._demo_done = asyncio.Event()
        self._demo_done.set()

    # -- lifetime -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker pool and read the stored models, before the first request."""
        await asyncio.to_thread(self.spool.clear)
        self.workers.start()
        await self.rescan()

    def build_demo_models(self) -> None:
        """Build the demo exhibits' missing models in the background (cached in the store)."""
        wanted = self._demo_wanted()
        self.demo_pending = len(wanted)  # counted before the hall's first build, which waits for them
        if wanted:
            self._demo_done.clear()
        if self.shared is None:
            self._spawn(self._build_demo_models(wanted))
        else:
            self._spawn(self._demo_models_shared(self.shared))

    async def rescan_loop(self) -> None:
        """Pick up models stored by another process (the CLI) and rebuild the hall for them."""
        self._hall_wanted.set()
        while True:
            await asyncio.sleep(self.rescan_seconds)
            if await self.rescan():
                self._hall_wanted.set()

    async def close(self) -> None:
        """Stop the background builds and the worker pool."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.workers.close()
        await asyncio.to_thread(self.spool.clear)
        if self.mirror is not None:
            await self.mirror.close()
        if self.shared is not None:
            await self.shared.close()

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- exhibits and their models --------------------------------------------------

    def exhibit(self, exhibit_id: str) -> Exhibit:
        """The exhibit, or ``exhibit.unknown`` (404)."""
        return self.catalog.get(exhibit_id)

    def asset(self, exhibit_id: str) -> ModelAsset | None:
        return self._assets.get(exhibit_id)

    def jobs_pending(self, exhibit_id: str) -> bool:
        """Whether a model for the exhibit is being made (an upload, or its demo model)."""
        exhibit = self.catalog.get(exhibit_id)
        return self.jobs.active(exhibit_id) > 0 or (exhibit.demo and self.demo_pending > 0)

    def hall_bytes(self) -> int | None:
        return self.hall.bytes

    async def job(self, job_id: str) -> Job:
        """The job, run here or (with Redis) by any instance; ``job.unknown`` (404) if none."""
        job = self.jobs.find(job_id)
        if job is None and self.shared is not None:
            record = await self.shared.load_job(job_id)
            job = Job.from_record(record) if record is not None else None
        if job is None:
            raise unknown_job(job_id)
        return job

    async def rescan(self) -> bool:
        """Re-read the models that changed (on disk, or in Redis); True if any did."""
        if self.shared is not None:
            return await self._rescan_shared(self.shared)
        ids = [exhibit.id for exhibit in self.catalog]
        stamps = await asyncio.to_thread(lambda: {i: self.models.manifest_stamp(i) for i in ids})
        changed = [i for i in ids if stamps[i] != self._stamps.get(i)]
        if not changed:
            return False
        found = await asyncio.to_thread(lambda: {i: self.models.manifest(i) for i in changed})
        for exhibit_id, entry in found.items():
            if entry is None:
                self._assets.pop(exhibit_id, None)
                self._stamps[exhibit_id] = None
            else:
                self._assets[exhibit_id], self._stamps[exhibit_id] = entry
        return True

    async def _rescan_shared(self, shared: SharedExhibition) -> bool:
        if await shared.version() == self._shared_version:
            return False
        version, assets = await shared.models()
        ids = {exhibit.id for exhibit in self.catalog}
        assets = {exhibit: asset for exhibit, asset in assets.items() if exhibit in ids}
        changed = assets != self._assets
        self._assets, self._shared_version = assets, version
        return changed

    async def _commit(self, exhibit_id: str, result: IngestResult, source: str) -> ModelAsset:
        created = datetime.now(UTC).isoformat(timespec="seconds")
        asset = ModelAsset.from_result(exhibit_id, result, created=created, source=source)
        glbs = [lod.glb for lod in result.lods]
        if self.shared is None:
            await asyncio.to_thread(self.models.commit, asset, glbs)
            self._stamps[exhibit_id] = await asyncio.to_thread(self.models.manifest_stamp, exhibit_id)
        else:
            await self._commit_shared(self.shared, asset, glbs)
        self._assets[exhibit_id] = asset
        self._hall_wanted.set()
        return asset

    async def _commit_shared(self, shared: SharedExhibition, asset: ModelAsset, glbs: list[bytes]) -> None:
        await shared.share_model(asset, glbs)  # the next rescan reads it with any other change
        await asyncio.to_thread(lambda: [self.models.put(data) for data in glbs])

    # -- uploads --------------------------------------------------------------------

    def check_options(self, unit: str | None, up: str | None) -> None:
        if unit is not None and unit not in UNITS:
            raise ForumcastError("model.bad_option", f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
        if up is not None and up not in UPS:
            raise ForumcastError("model.bad_option", f"up must be y or z, got {up!r}")

    def reserve(self, exhibit_id: str) -> None:
        """Count an upload about to be received, or refuse it (:class:`~exhibits.jobs.Busy`)
        when its exhibit has ``max_jobs_per_exhibitor`` unfinished or the queue is full.
        Every reserve is followed by one :meth:`release`."""
        mine = self.jobs.active(exhibit_id) + self._uploading.get(exhibit_id, 0)
        if mine >= self.max_jobs_per_exhibitor:
            raise Busy(
                "model.busy",
                f"{exhibit_id} has {mine} models uploading or in processing (at most "
                f"{self.max_jobs_per_exhibitor}); try again when one is done",
                retry_after=RETRY_AFTER,
            )
        if self.jobs.queued() + sum(self._uploading.values()) >= self.max_queued_jobs:
            raise Busy(
                "ingest.queue_full",
                f"{self.max_queued_jobs} models are waiting for processing; try again shortly",
                retry_after=RETRY_AFTER,
            )
        self._uploading[exhibit_id] = self._uploading.get(exhibit_id, 0) + 1

    def release(self, exhibit_id: str) -> None:
        left = self._uploading[exhibit_id] - 1
        if left:
            self._uploading[exhibit_id] = left
        else:
            del self._uploading[exhibit_id]

    def submit(
        self, exhibit: Exhibit, upload: Spooled, filename: str, *, unit: str | None, up: str | None
    ) -> Job:
        """Accept a spooled upload: a job that runs the pipeline in a worker when its exhibit's
        turn comes and stores the result; the job removes the file when it ends."""
        self.check_options(unit, up)
        job = self.jobs.create(exhibit.id, filename, upload.size)
        started = time.perf_counter()

        async def runner(job: Job, progress: Callable[[float, str], None]) -> IngestResult:
            return await self.workers.run(
                ingest_upload,
                job.id,
                str(upload.path),
                filename,
                unit,
                up,
                exhibit.envelope,
                self.limits,
                owner=exhibit.id,
                job=job.id,
                progress=progress,
                on_start=lambda: progress(0.0, "starting"),
            )

        async def commit(job: Job, result: IngestResult) -> ModelAsset:
            return await self._commit(exhibit.id, result, f"upload:{upload.sha256}")

        async def run() -> None:
            try:
                await self.jobs.run(job, runner, commit)
            finally:
                await asyncio.to_thread(upload.remove)
            if self.metrics is not None:
                self.metrics.ingest_jobs.labels(outcome=job.state.value).inc()
                self.metrics.ingest_seconds.observe(time.perf_counter() - started)
            log.info("ingest %s for %s: %s", job.id, job.exhibit, job.error.message if job.error else "done")

        self._spawn(run())
        return job

    # -- demo models ----------------------------------------------------------------

    def _demo_wanted(self) -> list[Exhibit]:
        """Demo exhibits without a current demo model (an exhibitor's upload is kept)."""
        current = f"demo:{DEMO_MODELS_VERSION}"

        def needs_model(exhibit: Exhibit) -> bool:
            asset = self._assets.get(exhibit.id)
            return exhibit.demo and (
                asset is None or (asset.source.startswith("demo:") and asset.source != current)
            )

        return [exhibit for exhibit in self.catalog if needs_model(exhibit)]

    async def _build_demo_models(self, wanted: list[Exhibit]) -> None:
        current = f"demo:{DEMO_MODELS_VERSION}"
        if wanted:
            log.info(
                "building %d demo models in the background (cached in %s)", len(wanted), self.models.root
            )

        async def one(exhibit: Exhibit) -> None:
            try:
                result = await self.workers.run(
                    ingest_demo, f"demo-{exhibit.id}", exhibit, self.limits, owner="demo"
                )
                await self._commit(exhibit.id, result, current)
                if self.shared is not None:
                    await self.shared.count_build("demo-model")
            except ForumcastError as exc:
                log.error("demo model for %s refused: %s", exhibit.id, exc.message)
            except Exception:
                log.exception("demo model for %s failed", exhibit.id)
            finally:
                self.demo_pending -= 1
                if not self.demo_pending:
                    self._demo_done.set()

        await asyncio.gather(*(one(exhibit) for exhibit in wanted))
        if wanted:
            log.info("demo models ready")

    async def _demo_models_shared(self, shared: SharedExhibition) -> None:
        """One instance builds the missing demo models for all, under the lease ``demo-models``;
        the others wait for its manifests (and take over if it dies: the lease runs out)."""
        lease = shared.lease("demo-models")
        try:
            while True:
                if await self.rescan():
                    self._hall_wanted.set()
                if not self._demo_wanted():
                    return
                async with lease.holding() as mine:
                    if mine:
                        await self.rescan()  # the last holder may have finished just now
                        wanted = self._demo_wanted()
                        self.demo_pending = len(wanted)
                        await self._build_demo_models(wanted)
                        return
                await asyncio.sleep(DEMO_POLL_SECONDS)
        finally:
            self.demo_pending = 0
            self._demo_done.set()

    # -- the hall -------------------------------------------------------------------

    async def hall_loop(self) -> None:
        """Rebuild the hall scene once per burst of model changes."""
        while True:
            await self._hall_wanted.wait()
            # Let a burst of commits (the demo models at start) settle into one rebuild.
            await asyncio.sleep(0.2)
            await self._demo_done.wait()
            self._hall_wanted.clear()
            try:
                await self.hall.build(dict(self._assets), superseded=self._hall_wanted.is_set)
            except ForumcastError as exc:
                log.error("could not build the hall scene: %s", exc.message)
                if exc.code == "ingest.worker_lost":
                    self._hall_wanted.set()  # its worker died: once more, in the new pool
            except Exception:
                log.exception("could not build the hall scene")

    async def hall_sha(self) -> str:
        """The sha256 of the current hall GLB, waiting for the first build if needed."""
        return await self.hall.sha()
