"""Copying this instance's ingest jobs to Redis as they change, so any instance answers their URL.

:class:`~exhibits.jobs.Jobs` reports every change synchronously (progress arrives from the
worker pool's relay many times a second); :class:`JobMirror` keeps only the newest record
of each job and writes them from one task, one after another, so Redis never goes back to
an older state of a job and a burst of progress costs one write per job, not one per
report. A failed write is logged and the next change writes the job again; the job itself
runs on regardless (its model is stored either way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from exhibits.jobs import Job

log = logging.getLogger("forumcast.exhibits")

Save = Callable[[dict[str, Any]], Awaitable[None]]


class JobMirror:
    """Writes the newest record of each changed job with ``save``, from one task."""

    def __init__(self, save: Save) -> None:
        self._save = save
        self._pending: dict[str, dict[str, Any]] = {}
        self._writer: asyncio.Task[None] | None = None

    def changed(self, job: Job) -> None:
        """Note the job's new state (``Jobs(on_change=...)``); it is written soon."""
        self._pending.pop(job.id, None)
        self._pending[job.id] = job.to_record()  # to the end: written after older changes
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="job mirror")

    async def _write(self) -> None:
        while self._pending:
            job_id = next(iter(self._pending))
            record = self._pending.pop(job_id)
            try:
                await self._save(record)
            except (RedisError, OSError) as exc:
                log.warning("job %s: could not share its state (%s)", job_id, exc)

    async def flush(self) -> None:
        """Return once every change noted so far is written (or failed to be)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
