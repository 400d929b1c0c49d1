"""``forumcast serve --workers N``: N instances on one machine, sharing the port, supervised.

The parent serves nothing itself. It starts the embedded Redis when no ``redis_url`` is
configured (:mod:`server.workers.embedded_redis`), then N worker processes, each a whole
instance (``instance_id`` ``<instance>/w<k>``, the same ``redis_url``) listening with
``SO_REUSEPORT`` on the same port, so the kernel spreads connections over them. It then
watches: a worker (or the Redis) that dies is started again after a backoff that doubles
with every quick death (0.5 s up to 30 s, reset once it has run for a minute); a worker
that exits with 2 (a fault in the configuration or the event file) stops everything, as it
would only fail again. SIGTERM or SIGINT stops the workers gracefully (SIGTERM, their own
shutdown, killed after ``shutdown_timeout`` plus a margin), then the Redis.

Workers run in their own process group, so a Ctrl-C on the terminal reaches the parent
only and each worker gets exactly one SIGTERM; they get SIGTERM too should the parent die.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

from server.config import Config
from server.workers.embedded_redis import EmbeddedRedis, die_with_parent

log = logging.getLogger("forumcast.workers")

#: A worker's exit code that means "fix the configuration": not worth a restart.
EXIT_USAGE = 2
#: First wait before a restart, and its cap (seconds); doubles with every quick death.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
#: A process that ran this long (seconds) before dying starts again at once.
HEALTHY_AFTER = 60.0
#: Seconds between looks at the processes.
POLL = 0.1

Serve = Callable[[Config], int]


def worker_config(config: Config, index: int, redis_url: str) -> Config:
    """Worker ``index``'s settings: its own instance id, the shared Redis, one process.

    The RTMP port is shared by every worker (SO_REUSEPORT, like the HTTP port), but libsrt
    cannot share a UDP port between processes: the SRT listener is the first worker's (the
    pool restarts it if it dies, listener included)."""
    srt_port = config.srt_port if index == 1 else 0
    return config.replace(
        workers=1, instance_id=f"{config.instance()}/w{index}", redis_url=redis_url, srt_port=srt_port
    )


def _worker_main(serve: Serve, config: Config) -> None:
    os.setpgrp()
    die_with_parent()
    sys.exit(serve(config))


def backoff(quick_deaths: int) -> float:
    return float(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, quick_deaths - 1)))


@dataclass
class Slot:
    """One worker: its process, when it started, and when it may start again."""

    index: int
    config: Config
    process: BaseProcess | None = None
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0


class WorkerPool:
    def __init__(self, config: Config, serve: Serve) -> None:
        self.config = config
        self._serve = serve
        self._context = multiprocessing.get_context("spawn")
        self._redis = None if config.redis_url else EmbeddedRedis(config.data_dir)
        self._redis_deaths = 0
        self._redis_started = 0.0
        self._stopping = threading.Event()
        self.slots: list[Slot] = []

    def run(self) -> int:
        """Start everything and supervise until a signal (0) or a fatal worker exit (2)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            url = self.config.redis_url
            if self._redis is not None:
                self._redis.start()
                self._redis_started = time.monotonic()
                url = self._redis.url
            self.slots = [
                Slot(k, worker_config(self.config, k, url)) for k in range(1, self.config.workers + 1)
            ]
            log.info(
                "%d workers on port %d, state in %s",
                len(self.slots),
                self.config.port,
                "the embedded redis" if self._redis else "the configured Redis",
            )
            for slot in self.slots:
                self._start(slot)
            return self._supervise()
        finally:
            self._stop_workers()
            if self._redis is not None:
                self._redis.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log.info("stopped")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping the workers", signal.Signals(signum).name)
        self._stopping.set()

    def _start(self, slot: Slot) -> None:
        process = self._context.Process(
            target=_worker_main, args=(self._serve, slot.config), name=f"forumcast-w{slot.index}"
        )
        process.start()
        slot.process, slot.started = process, time.monotonic()
        log.info("worker %s started (pid %s)", slot.config.instance_id, process.pid)

    def _supervise(self) -> int:
        while not self._stopping.wait(POLL):
            now = time.monotonic()
            if self._redis is not None and not self._redis.running:
                ran = now - self._redis_started
                self._redis_deaths = 1 if ran >= HEALTHY_AFTER else self._redis_deaths + 1
                wait = backoff(self._redis_deaths)
                log.error("embedded redis died: starting it again in %.1f s", wait)
                if self._stopping.wait(wait):
                    break
                self._redis.start()
                self._redis_started = time.monotonic()
            for slot in self.slots:
                process = slot.process
                if process is not None and process.exitcode is not None:
                    code = process.exitcode
                    _kill_group(process.pid)
                    process.close()
                    slot.process = None
                    if code == EXIT_USAGE:
                        log.error("worker %s exited with %d: stopping", slot.config.instance_id, code)
                        return EXIT_USAGE
                    ran = now - slot.started
                    slot.quick_deaths = 0 if ran >= HEALTHY_AFTER else slot.quick_deaths + 1
                    wait = backoff(slot.quick_deaths) if slot.quick_deaths else 0.0
                    slot.restart_at = now + wait
                    log.error(
                        "worker %s exited with %s after %.1f s: restarting in %.1f s",
                        slot.config.instance_id,
                        code,
                        ran,
                        wait,
                    )
                if slot.process is None and now >= slot.restart_at:
                    self._start(slot)
        return 0

    def _stop_workers(self) -> None:
        running = [s.process for s in self.slots if s.process is not None and s.process.exitcode is None]
        for process in running:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.shutdown_timeout + 5.0
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                log.warning("worker %s did not stop in time: killed", process.name)
                process.kill()
                process.join()
            _kill_group(process.pid)


def _kill_group(pid: int | None) -> None:
    """Kill what is left of a worker's process group (its group id is its pid): the processes
    it started (the 3D ingest pool) outlive a worker that was killed, holding its pipes."""
    if pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def run_workers(config: Config, serve: Serve) -> int:
    """``forumcast serve`` with ``workers`` > 1; ``serve`` runs one instance (in each worker)."""
    return WorkerPool(config, serve).run()
