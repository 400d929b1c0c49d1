"""Ingest jobs: an upload's way from ``202 Accepted`` to a stored LOD chain or a clear error.

A :class:`Job` moves ``queued → running → done | failed`` and never back. Its progress
(0..1 and the pipeline's step name) comes from the worker process while it runs; when it
is done, its result is the stored :class:`~exhibits.modelstore.ModelAsset`; when it failed,
its error is the code and message the pipeline gave (``model.*``), exactly what a
synchronous refusal would have said. Jobs live in this process's memory, at most
``keep`` of them (the oldest finished ones go first): the job URL is for following an
upload, while the exhibit's model itself is in the model store. With Redis, every change
is also handed to ``on_change`` as a :meth:`Job.to_record` (:mod:`exhibits.job_mirror`
copies it to Redis), so any instance can answer the job URL (:meth:`Job.from_record`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from exhibits.model import IngestResult
from exhibits.modelstore import ModelAsset
from server.errors import ForumcastError

log = logging.getLogger("forumcast.exhibits")


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


_NEXT: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.DONE, JobState.FAILED}),
    JobState.DONE: frozenset(),
    JobState.FAILED: frozenset(),
}


@dataclass(slots=True)
class Job:
    """One ingest: who asked for what, how far it got, and how it ended."""

    id: str
    exhibit: str
    filename: str
    size: int
    state: JobState = JobState.QUEUED
    progress: float = 0.0
    step: str = "queued"
    created: float = field(default_factory=time.time)
    #: When a worker took it (its turn came; see :mod:`exhibits.fair`).
    started: float | None = None
    finished: float | None = None
    asset: ModelAsset | None = None
    error: ForumcastError | None = None

    def move(self, state: JobState) -> None:
        if state not in _NEXT[self.state]:
            raise RuntimeError(f"job {self.id}: {self.state} cannot become {state}")
        self.state = state
        if state is JobState.RUNNING:
            self.started = time.time()
        if state in (JobState.DONE, JobState.FAILED):
            self.finished = time.time()

    def to_record(self) -> dict[str, Any]:
        """Everything about the job as JSON-compatible data (what other instances read)."""
        return {
            "id": self.id,
            "exhibit": self.exhibit,
            "filename": self.filename,
            "size": self.size,
            "state": self.state.value,
            "progress": self.progress,
            "step": self.step,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "asset": self.asset.to_json() if self.asset is not None else None,
            "error": {"code": self.error.code, "message": self.error.message} if self.error else None,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        asset, error = record.get("asset"), record.get("error")
        return cls(
            id=str(record["id"]),
            exhibit=str(record["exhibit"]),
            filename=str(record["filename"]),
            size=int(record["size"]),
            state=JobState(record["state"]),
            progress=float(record["progress"]),
            step=str(record["step"]),
            created=float(record["created"]),
            started=record.get("started"),
            finished=record.get("finished"),
            asset=ModelAsset.from_json(asset) if asset else None,
            error=ForumcastError(error["code"], error["message"]) if error else None,
        )

    def to_json(self, render_asset: Callable[[ModelAsset], dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "exhibit": self.exhibit,
            "filename": self.filename,
            "bytes": self.size,
            "state": self.state.value,
            "progress": round(self.progress, 3),
            "step": self.step,
            "url": f"/api/v1/jobs/{self.id}",
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "warnings": list(self.asset.warnings) if self.asset is not None else [],
        }
        if self.asset is not None:
            body["model"] = render_asset(self.asset)
        if self.error is not None:
            body["error"] = {"code": self.error.code, "message": self.error.message}
        return body


def unknown_job(job_id: str) -> ForumcastError:
    return ForumcastError("job.unknown", f"no job {job_id!r}")


class Busy(ForumcastError):
    """Too many jobs (429): ``model.busy`` for one exhibit, ``ingest.queue_full`` for all;
    ``retry_after`` in whole seconds goes into the ``Retry-After`` header."""

    def __init__(self, code: str, message: str, *, retry_after: int) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


Runner = Callable[[Job, Callable[[float, str], None]], Awaitable[IngestResult]]
Committer = Callable[[Job, IngestResult], Awaitable[ModelAsset]]


class Jobs:
    """The jobs of this process, run one task each."""

    def __init__(self, *, keep: int = 500, on_change: Callable[[Job], None] | None = None) -> None:
        self.keep = keep
        self._jobs: dict[str, Job] = {}
        self._on_change = on_change

    def _changed(self, job: Job) -> None:
        if self._on_change is not None:
            self._on_change(job)

    def create(self, exhibit: str, filename: str, size: int) -> Job:
        job = Job(id=secrets.token_urlsafe(12), exhibit=exhibit, filename=filename, size=size)
        self._jobs[job.id] = job
        self._forget_old()
        self._changed(job)
        return job

    def get(self, job_id: str) -> Job:
        job = self.find(job_id)
        if job is None:
            raise unknown_job(job_id)
        return job

    def find(self, job_id: str) -> Job | None:
        """This process's job ``job_id``, if it has one."""
        return self._jobs.get(job_id)

    def queued(self) -> int:
        """Jobs waiting for a worker."""
        return sum(1 for job in self._jobs.values() if job.state is JobState.QUEUED)

    def active(self, exhibit: str | None = None) -> int:
        """Jobs not finished yet, of one exhibit or of all."""
        return sum(
            1
            for job in self._jobs.values()
            if job.state in (JobState.QUEUED, JobState.RUNNING) and exhibit in (None, job.exhibit)
        )

    async def run(self, job: Job, runner: Runner, commit: Committer) -> Job:
        """Run ``job`` to its end; never raises for the job's own failure."""

        def progress(fraction: float, step: str) -> None:
            if job.state is JobState.QUEUED:
                job.move(JobState.RUNNING)
            # Workers report in order, but never let a late report move the bar back.
            job.progress = max(job.progress, min(1.0, fraction))
            job.step = step
            self._changed(job)

        try:
            result = await runner(job, progress)
            if job.state is JobState.QUEUED:
                job.move(JobState.RUNNING)
            job.step = "storing"
            self._changed(job)
            job.asset = await commit(job, result)
            job.progress = 1.0
            job.step = "done"
            job.move(JobState.DONE)
        except ForumcastError as exc:
            job.error = exc
            job.step = "failed"
            job.move(JobState.FAILED)
        except Exception:
            log.exception("ingest job %s for %s failed unexpectedly", job.id, job.exhibit)
            job.error = ForumcastError("internal.error", "the model could not be processed (internal error)")
            job.step = "failed"
            job.move(JobState.FAILED)
        self._changed(job)
        return job

    def _forget_old(self) -> None:
        if len(self._jobs) <= self.keep:
            return
        finished = sorted(
            (job for job in self._jobs.values() if job.finished is not None),
            key=lambda job: job.finished or 0,
        )
        for job in finished[: len(self._jobs) - self.keep]:
            del self._jobs[job.id]
