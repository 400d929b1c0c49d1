"""``forumcast loadtest``: many watch WebSockets from one lean process, for the relay benchmark.

One asyncio process opens ``--viewers`` connections to ``/ws/watch/{stage}`` (``--ramp-per-second``
of them per second), keeps them for ``--duration`` seconds in all, then closes them and reports.
This module owns the run (:func:`run_load`: the ramp, the probe joins, the end) and the command
(:func:`add_arguments`, :func:`main`). The viewers are the lean WebSocket client of
:mod:`clients.loadtest_client`, which costs far less CPU than the server it loads (its own CPU
time is in the report, to check that); the figures are :mod:`clients.loadtest_report`'s.

``--joins K`` adds K short-lived probe viewers spread over the steady phase: each connects,
waits for its first fragment and leaves — the time to first fragment of a new viewer at full
load.

Load tests target loopback only (the server address must resolve to loopback) and are
bounded: at most :data:`MAX_VIEWERS` viewers, at most :data:`MAX_DURATION` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import resource
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from clients.connection import DEFAULT_SERVER, ClientError, watch_url
from clients.loadtest_client import Run, Viewer, ViewerState, close_all, handshake_request
from clients.loadtest_report import SETTLE, LoadReport, summarise

#: A viewer that received no fragment for this long at the end is not counted as held.
HELD_WINDOW = 2.0
MAX_VIEWERS = 20_000
MAX_DURATION = 3600.0
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class LoadSettings:
    url: str  # ws://host:port/ws/watch/{stage}[?token=...]
    viewers: int
    ramp_per_second: float = 500.0
    duration: float = 30.0
    joins: int = 0
    sent_log: Path | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.viewers <= MAX_VIEWERS:
            raise ValueError(f"viewers must be 1..{MAX_VIEWERS}, not {self.viewers}")
        if not 0 < self.duration <= MAX_DURATION:
            raise ValueError(f"duration must be in (0, {MAX_DURATION:g}] seconds, not {self.duration}")
        if self.ramp_per_second <= 0:
            raise ValueError("ramp-per-second must be positive")
        if not 0 <= self.joins <= 10_000:
            raise ValueError("joins must be 0..10000")


def _target(url: str) -> tuple[str, int, str]:
    """Host, port and request target of a ``ws://`` URL whose host is a loopback address."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise ClientError(f"loadtest needs a ws:// (or http://) loopback server, not {url!r}")
    port = parts.port or 80
    try:
        addresses = {
            str(info[4][0]) for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        }
    except OSError as exc:
        raise ClientError(f"cannot resolve {parts.hostname!r}: {exc}") from exc
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ClientError(f"loadtest targets loopback only; {parts.hostname!r} is not a loopback address")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, target


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


async def run_load(settings: LoadSettings) -> LoadReport:
    """Run one bounded load test; never raises for what the server does (it is in the report)."""
    host, port, target = _target(settings.url)
    _raise_open_files(settings.viewers + settings.joins + 256)
    loop = asyncio.get_running_loop()
    run = Run()
    report = LoadReport(
        url=settings.url.split("?", 1)[0],
        viewers=settings.viewers,
        ramp_per_second=settings.ramp_per_second,
        duration_s=settings.duration,
    )
    probes: list[Viewer] = []

    async def connect(probe: bool) -> None:
        request, accept = handshake_request(host, port, target)
        viewer = Viewer(run, request, accept, probe=probe)
        (probes if probe else run.viewers).append(viewer)
        try:
            await asyncio.wait_for(loop.create_connection(lambda: viewer, host, port), CONNECT_TIMEOUT)
            await asyncio.wait_for(asyncio.shield(viewer.connected), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            viewer.fail(
                f"connect: {type(exc).__name__}" + (f" {exc.errno}" if isinstance(exc, OSError) else "")
            )

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    report.started = time.time()
    deadline = start + settings.duration
    tasks: set[asyncio.Task[None]] = set()

    def spawn(probe: bool) -> None:
        task = loop.create_task(connect(probe))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        for index in range(settings.viewers):
            due = start + index / settings.ramp_per_second
            if due >= deadline:
                break
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            spawn(False)
        while tasks and time.monotonic() < deadline:
            await asyncio.wait(set(tasks), timeout=deadline - time.monotonic())
        if not tasks:
            report.ramp_done_s = time.monotonic() - start
        if settings.joins:
            first = time.monotonic() + SETTLE
            step = max(0.0, deadline - 0.5 - first) / settings.joins
            for index in range(settings.joins):
                due = first + index * step
                if due >= deadline - 0.25:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                spawn(True)
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        after = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.time()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        report.wall_s = time.monotonic() - start
        report.open_at_end = sum(v.state is ViewerState.OPEN for v in run.viewers)
        report.held = sum(
            v.state is ViewerState.OPEN and wall - v.last_media <= HELD_WINDOW for v in run.viewers
        )
        await close_all(run, [*run.viewers, *probes])
    report.cpu_user_s = round(after.ru_utime - before.ru_utime, 3)
    report.cpu_system_s = round(after.ru_stime - before.ru_stime, 3)
    report.cpu_percent = round((report.cpu_user_s + report.cpu_system_s) / max(report.wall_s, 1e-9) * 100, 1)
    summarise(report, run, probes, settings.sent_log)
    return report


# --- the command --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``forumcast loadtest --stage ID --viewers N [--ramp-per-second R] [--duration S] [--json]``."""
    parser.add_argument(
        "--server",
        default=os.environ.get("FORUMCAST_SERVER", DEFAULT_SERVER),
        help=f"server address, loopback only (default $FORUMCAST_SERVER or {DEFAULT_SERVER})",
    )
    parser.add_argument("--stage", required=True, help="the stage whose program the viewers watch")
    parser.add_argument("--viewers", type=int, required=True, metavar="N", help=f"1..{MAX_VIEWERS}")
    parser.add_argument(
        "--ramp-per-second", type=float, default=500.0, metavar="R", help="new viewers per second (500)"
    )
    parser.add_argument(
        "--duration", type=float, default=30.0, metavar="S", help="seconds in all, ramp included (30)"
    )
    parser.add_argument(
        "--joins", type=int, default=20, metavar="K", help="probe viewers joining at full load (20)"
    )
    parser.add_argument(
        "--token", default=os.environ.get("FORUMCAST_TOKEN"), help="invitation (closed stage)"
    )
    parser.add_argument(
        "--sent-log",
        type=Path,
        metavar="FILE",
        help="the publisher's 'NTP_KEY SEND_TIME' lines: report the latency the relay adds",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def main(args: argparse.Namespace) -> int:
    """Run ``forumcast loadtest``: 0 when viewers got media, 1 when none did, 2 for a usage problem."""
    try:
        settings = LoadSettings(
            url=watch_url(args.server, stage=args.stage, token=args.token),
            viewers=args.viewers,
            ramp_per_second=args.ramp_per_second,
            duration=args.duration,
            joins=args.joins,
            sent_log=args.sent_log,
        )
        report = asyncio.run(run_load(settings))
    except (ClientError, ValueError) as exc:
        print(f"forumcast loadtest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.describe(), flush=True)
    return 0 if report.fragments else 1


def _standalone(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="forumcast loadtest", description="many watch WebSockets from one lean process"
    )
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(_standalone())
