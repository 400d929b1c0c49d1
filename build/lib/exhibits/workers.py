"""The process pool that does the exhibition's CPU work, and the functions run in it.

Loading, cleaning, decimating and writing a model takes seconds of pure CPU; on the
event loop it would freeze every stream and page. It runs here, in worker processes
started with ``spawn`` (forking a process that runs an event loop and threads copies
their locks mid-use). Each pool has its own progress queue; a thread in the server reads
it and hands ``(job, fraction, step)`` to the loop.

Workers take turns fairly (:class:`~exhibits.fair.FairSlots`: one owner's many jobs do not
hold up another's). A worker that dies mid-job (the OOM killer's SIGKILL) breaks a
``ProcessPoolExecutor`` for good, and may die holding a lock of the pool's queues: the
pool is then replaced by a new one with new queues, the old one's processes are killed
rather than waited for, the job whose worker died fails with ``ingest.worker_lost``, and
a job that only shared the broken pool runs again in the new one. Closing never waits
for a worker for more than ``grace`` seconds.

Functions submitted to the pool live at module level (pickled by name), take file paths
rather than file bodies (an upload can be 100 MiB) and return plain data: the pipeline's
:class:`~exhibits.model.IngestResult` (GLB bytes included) or the hall's GLB bytes.
Nothing here writes the model store: the server commits results, so a refused or crashed
job leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import queue
import secrets
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, TypeVar

from exhibits.catalog import Exhibit
from exhibits.fair import FairSlots
from exhibits.glb import write_glb
from exhibits.glb_read import read_glb
from exhibits.hall import HallLayout
from exhibits.hall_scene import hall_model
from exhibits.model import IngestResult
from exhibits.pipeline import Limits, ingest_model, ingest_quietly
from exhibits.procedural import demo_model
from server.errors import ForumcastError
from server.metrics import Metrics

log = logging.getLogger("forumcast.exhibits")

T = TypeVar("T")
#: ``("progress", job, fraction, step)`` or ``("worker", call, pid, "")``.
Message = tuple[str, str, float, str]

#: Set in each worker process by :func:`_start_worker`.
_progress: Queue[Message] | None = None


def _start_worker(progress: Queue[Message]) -> None:
    global _progress
    _progress = progress
    # Ctrl-C and SIGTERM reach the whole process group; the server stops the pool itself
    # (a worker killed mid-job would only print a traceback and break the pool early).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _call(call: str, fn: Callable[..., T], *args: Any) -> T:
    """Say which worker runs ``call`` (so a dead worker's job is known), then run it."""
    if _progress is not None:
        _progress.put(("worker", call, float(os.getpid()), ""))
    return fn(*args)


def _report(job: str) -> Callable[[float, str], None]:
    def report(fraction: float, step: str) -> None:
        if _progress is not None:
            _progress.put(("progress", job, fraction, step))

    return report


def ingest_upload(
    job: str,
    path: str,
    filename: str,
    unit: str | None,
    up: str | None,
    envelope: tuple[float, float, float] | None,
    limits: Limits,
) -> IngestResult:
    """Worker side of an upload: the whole pipeline on the spooled file at ``path``."""
    data = Path(path).read_bytes()
    return ingest_quietly(
        data, filename, unit=unit, up=up, envelope=envelope, limits=limits, progress=_report(job)
    )


def ingest_demo(job: str, exhibit: Exhibit, limits: Limits) -> IngestResult:
    """Worker side of a demo exhibit: its procedural model through the same pipeline."""
    model = demo_model(exhibit)
    return ingest_model(model, envelope=exhibit.envelope, limits=limits, progress=_report(job))


def build_hall(layout: HallLayout, exhibits: list[Exhibit], smallest: dict[str, Path]) -> bytes:
    """Worker side of ``/hall.glb``: the hall with each exhibit's smallest LOD in its booth."""
    models = {exhibit: read_glb(path.read_bytes()) for exhibit, path in smallest.items()}
    return write_glb(hall_model(layout, {e.id: e for e in exhibits}, models))


@dataclasses.dataclass(slots=True)
class _Pool:
    """One generation of the pool: its executor, progress queue and relay thread."""

    executor: ProcessPoolExecutor
    queue: Queue[Message]
    stop: threading.Event
    relay: threading.Thread
    #: Once broken: the pids of the workers that had died (the rest were stopped by us).
    dead: asyncio.Future[set[int]] | None = None

    def processes(self) -> dict[int, BaseProcess]:
        # The executor keeps its processes in a private dict (pid -> Process); it is the only
        # way to tell the worker that died from the ones the broken pool merely stopped.
        return dict(getattr(self.executor, "_processes", None) or {})


class Workers:
    """A spawn-based process pool, replaced when a worker dies, plus the progress relay."""

    def __init__(
        self, *, processes: int = 2, metrics: Metrics | None = None, grace: float = 1.0, retries: int = 1
    ) -> None:
        self.processes = processes
        self.metrics = metrics
        #: Seconds a worker gets to stop on close (or to finish when its pool broke) before SIGKILL.
        self.grace = grace
        #: Times a job is run again when it was lost with a pool another worker broke.
        self.retries = retries
        self.restarts = 0
        self.slots = FairSlots(slots=processes)
        self._context = multiprocessing.get_context("spawn")
        self._pool: _Pool | None = None
        self._broken_reason: str | None = None
        self._listeners: dict[str, Callable[[float, str], None]] = {}
        self._pids: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = self._new_pool()

    def _new_pool(self) -> _Pool:
        progress: Queue[Message] = self._context.Queue()
        # The server only reads this queue; never let its exit wait on a feeder thread.
        progress.cancel_join_thread()
        executor = ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=self._context,
            initializer=_start_worker,
            initargs=(progress,),
        )
        stop = threading.Event()
        relay = threading.Thread(
            target=self._relay_progress, args=(progress, stop), name="forumcast-progress", daemon=True
        )
        relay.start()
        return _Pool(executor, progress, stop, relay)

    def health(self) -> dict[str, Any]:
        """For ``/readyz``: ok unless the pool could not be rebuilt."""
        pool = self._pool
        body: dict[str, Any] = {
            "ok": pool is not None and self._broken_reason is None,
            "workers": self.processes,
            "alive": sum(p.is_alive() for p in pool.processes().values()) if pool else 0,
            "restarts": self.restarts,
            "running": self.slots.busy,
            "queued": self.slots.waiting,
        }
        if self._broken_reason is not None:
            body["reason"] = self._broken_reason
        return body

    def pids(self) -> list[int]:
        """The worker processes of the current pool."""
        return sorted(self._pool.processes()) if self._pool else []

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        owner: str = "",
        job: str | None = None,
        progress: Callable[[float, str], None] | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> T:
        """Run ``fn(*args)`` in a worker when ``owner`` gets its turn; ``on_start`` hears that
        turn and ``progress`` the job's reports, both on the loop."""
        async with self.slots.slot(owner):
            if on_start is not None:
                on_start()
            if job is not None and progress is not None:
                self._listeners[job] = progress
            try:
                return await self._submit(fn, args)
            finally:
                if job is not None:
                    self._listeners.pop(job, None)

    async def _submit(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        retries = self.retries
        while True:
            pool = self._pool
            if pool is None:
                raise ForumcastError("ingest.worker_lost", "the ingest workers are stopped")
            call = secrets.token_hex(8)
            try:
                future: Future[T] = pool.executor.submit(_call, call, fn, *args)
            except BrokenProcessPool:
                await self._broken(pool)  # broken before this call got to it: not its fault
                continue
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                dead = await self._broken(pool)
                pid = self._pids.get(call)
                if pid is None or pid in dead or retries <= 0:  # unknown counts as dead
                    raise ForumcastError(
                        "ingest.worker_lost",
                        "the worker processing this model stopped (killed, or out of memory); "
                        "try again, or send a smaller model",
                    ) from None
                retries -= 1
                log.warning("ingest work lost with a broken worker pool runs again")
            finally:
                self._pids.pop(call, None)

    async def _broken(self, broken: _Pool) -> set[int]:
        """The workers that died in a broken pool. The first to notice replaces the pool and
        kills what is left of the old one, once it knows who died."""
        if broken.dead is None:
            broken.dead = asyncio.get_running_loop().create_future()
            try:
                self._pool = self._new_pool()
            except Exception as exc:
                self._pool = None
                self._broken_reason = f"the ingest worker pool could not be restarted: {exc}"
                log.exception("the ingest worker pool could not be restarted")
            else:
                self._broken_reason = None
            self.restarts += 1
            if self.metrics is not None:
                self.metrics.ingest_pool_restarts.inc()
            log.warning("an ingest worker died; the worker pool was replaced (restart %d)", self.restarts)
            broken.dead.set_result(await asyncio.to_thread(_dead_workers, broken))
            await asyncio.to_thread(_stop_pool, broken, 0.0)
        return await asyncio.shield(broken.dead)

    def _relay_progress(self, progress: Queue[Message], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                item = progress.get(timeout=0.25)
            except queue.Empty:
                continue
            except Exception:  # closed, or a message cut short by a killed worker
                return
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self._loop.call_soon_threadsafe(self._deliver, *item)

    def _deliver(self, kind: str, key: str, value: float, step: str) -> None:
        if kind == "worker":
            self._pids[key] = int(value)
            return
        listener = self._listeners.get(key)
        if listener is not None:
            listener(value, step)

    async def close(self) -> None:
        """Stop the pool (running jobs are abandoned) within about ``grace`` seconds."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(_stop_pool, pool, self.grace)


def _dead_workers(pool: _Pool) -> set[int]:
    """The broken pool's workers that are dead. The pool notices a death when the worker's
    pipe closes, which can be a moment before its exit status exists; the other workers got
    SIGTERM from the broken pool, which they ignore: they are alive until we kill them."""
    processes = pool.processes()
    for process in processes.values():
        process.join(0.2)
    return {pid for pid, process in processes.items() if process.exitcode is not None}


def _stop_pool(pool: _Pool, grace: float) -> None:
    """Stop a pool without waiting on a dead or stuck worker: after ``grace`` seconds, SIGKILL."""
    processes = list(pool.processes().values())
    manager = getattr(pool.executor, "_executor_manager_thread", None)
    pool.executor.shutdown(wait=False, cancel_futures=True)  # idle workers exit on their own
    for process in processes:  # at most ``grace`` in all
        process.join(grace / len(processes))
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(1.0)
    if isinstance(manager, threading.Thread):
        # With every worker gone it finishes at once; the interpreter joins it at exit.
        manager.join(2.0)
    pool.stop.set()
    pool.relay.join(1.0)
    with contextlib.suppress(OSError, ValueError):
        pool.queue.close()
