"""The process pool that does the exhibition's CPU work, and the functions run in it.

Loading, cleaning, decimating and writing a model takes seconds of pure CPU; on the
event loop it would freeze every stream and page. It runs here, in worker processes
started with ``spawn`` (forking a process that runs an event loop and threads copies
their locks mid-use). Each worker gets one end of a progress queue at start; a thread in
the server reads the other end and hands ``(job, fraction, step)`` to the loop.

Functions submitted to the pool live at module level (pickled by name) and return plain
data: the pipeline's :class:`~exhibits.model.IngestResult` (GLB bytes included) or the
hall's GLB bytes. Nothing here writes the model store: the server commits results, so a
refused or crashed job leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, TypeVar

from exhibits.catalog import Exhibit
from exhibits.glb import write_glb
from exhibits.glb_read import read_glb
from exhibits.hall import HallLayout
from exhibits.hall_scene import hall_model
from exhibits.model import IngestResult
from exhibits.pipeline import Limits, ingest, ingest_model
from exhibits.procedural import demo_model

T = TypeVar("T")
Progress = Callable[[str, float, str], None]

#: Set in each worker process by :func:`_start_worker`.
_progress: Queue[tuple[str, float, str] | None] | None = None


def _start_worker(progress: Queue[tuple[str, float, str] | None]) -> None:
    global _progress
    _progress = progress
    # Ctrl-C and SIGTERM reach the whole process group; the server stops the pool itself
    # (a worker killed mid-job would only print a traceback and break the pool early).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _report(job: str) -> Callable[[float, str], None]:
    def report(fraction: float, step: str) -> None:
        if _progress is not None:
            _progress.put((job, fraction, step))

    return report


def ingest_upload(
    job: str,
    data: bytes,
    filename: str,
    unit: str | None,
    up: str | None,
    envelope: tuple[float, float, float] | None,
    limits: Limits,
) -> IngestResult:
    """Worker side of an upload: the whole pipeline on the uploaded bytes."""
    return ingest(data, filename, unit=unit, up=up, envelope=envelope, limits=limits, progress=_report(job))


def ingest_demo(job: str, exhibit: Exhibit, limits: Limits) -> IngestResult:
    """Worker side of a demo exhibit: its procedural model through the same pipeline."""
    model = demo_model(exhibit)
    return ingest_model(model, envelope=exhibit.envelope, limits=limits, progress=_report(job))


def build_hall(layout: HallLayout, exhibits: list[Exhibit], smallest: dict[str, Path]) -> bytes:
    """Worker side of ``/hall.glb``: the hall with each exhibit's smallest LOD in its booth."""
    models = {exhibit: read_glb(path.read_bytes()) for exhibit, path in smallest.items()}
    return write_glb(hall_model(layout, {e.id: e for e in exhibits}, models))


class Workers:
    """A spawn-based process pool plus the thread that relays workers' progress."""

    def __init__(self, *, processes: int = 2) -> None:
        self.processes = processes
        self._context = multiprocessing.get_context("spawn")
        self._queue: Queue[tuple[str, float, str] | None] = self._context.Queue()
        self._pool: ProcessPoolExecutor | None = None
        self._listeners: dict[str, Callable[[float, str], None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._relay: threading.Thread | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=self._context,
            initializer=_start_worker,
            initargs=(self._queue,),
        )
        self._relay = threading.Thread(target=self._relay_progress, name="forumcast-progress", daemon=True)
        self._relay.start()

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        job: str | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> T:
        """Run ``fn(*args)`` in a worker; ``progress`` hears the job's reports on the loop."""
        if self._pool is None:
            raise RuntimeError("the worker pool is not running")
        if job is not None and progress is not None:
            self._listeners[job] = progress
        try:
            future: Future[T] = self._pool.submit(fn, *args)
            return await asyncio.wrap_future(future)
        finally:
            if job is not None:
                self._listeners.pop(job, None)

    def _relay_progress(self) -> None:
        while True:
            try:
                item = self._queue.get()
            except (EOFError, OSError):
                return
            if item is None:
                return
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self._loop.call_soon_threadsafe(self._deliver, *item)

    def _deliver(self, job: str, fraction: float, step: str) -> None:
        listener = self._listeners.get(job)
        if listener is not None:
            listener(fraction, step)

    async def close(self) -> None:
        """Stop the pool (running jobs are cancelled) and the progress relay."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
        self._queue.put(None)
        if self._relay is not None:
            await asyncio.to_thread(self._relay.join, 5)
        self._queue.close()
        with contextlib.suppress(queue.Empty, OSError, ValueError):
            self._queue.join_thread()
