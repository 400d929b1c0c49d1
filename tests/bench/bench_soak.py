"""Soak benchmark: one server under everything at once for an hour; does it stay flat?

Run on demand (pytest does not collect ``tests/bench``)::

    .venv/bin/python tests/bench/bench_soak.py --minutes 60 --viewers 1000
    .venv/bin/python tests/bench/bench_soak.py --minutes 5 --viewers 1000      # the short variant

One ``forumcast serve`` subprocess on a free loopback port (two stages, ``main`` and
``forum``, each with inputs ``{stage}-a`` and ``{stage}-b`` and one session from 2020 to 2099
on input ``a`` with backup ``b``; the demo catalog; no demo inputs or models; a fixed
``secret``, so this process mints the producer and exhibitor tokens and the stream keys with
``server.auth.Tokens``; ``max_viewers_per_ip`` raised, every viewer comes from 127.0.0.1).
After a baseline sample (no load at all) it drives, for ``--minutes``, all at once:

- **viewers**: ``--viewers`` split into four cohorts, each a ``forumcast loadtest`` process
  (``clients.loadtest``) that ramps its share in over 10 s, holds them for ``--wave`` seconds
  in all and leaves; a cohort starts again as soon as it ended, the cohorts are staggered by a
  quarter wave and alternate the two stages, so the population churns between 3/4 and all;
- **publishers**: a real-time test pattern (``forumcast publish --test-pattern``, 640x360,
  1 Mbps, 2 s GOP) on each of the four inputs; in every 3-minute cycle of a stage its primary
  ``a`` is killed (SIGKILL: the server sees the TCP connection go) while automation has the
  stage, and restarted 15 s later (a failover to ``b``, then a failback), and its backup ``b``
  is killed and restarted while a producer has ``a`` on air;
- **takes**: every minute per stage, by a producer token: ``b``, ``a``, then ``auto``;
- **model uploads**: every ``--upload-every`` seconds (30) a small STL or textured GLB (built
  by ``tests/exhibits/assets.py``) to a demo exhibit with its exhibitor token through ``POST
  /api/v1/exhibits/{id}/model``, following the job to ``done``;
- **API traffic**: ``--api-rate`` GETs per second (3) over the event, sessions, stages,
  the frab and iCal exports, exhibits, the hall and its GLB and ``/metrics``.

Every 10 s it samples the server: RSS (``/proc/PID/status`` VmRSS), open file descriptors
(``/proc/PID/fd``), threads, ``forumcast_task_failures_total``, the viewers gauge and
``/readyz``; and the machine's load average. After the load stops it waits for the file
descriptors to settle. Targets (the exit code is 1 if any is missed): RSS growth after
warm-up ≤ 5 % (median of the first two minutes after warm-up vs the last two minutes; the
warm-up is a fifth of the run, 1 to 5 minutes), file descriptors back to the baseline within
:data:`FD_MARGIN`, no task failure, ``/readyz`` 200 in every sample, no 5xx anywhere, every
upload done, and failovers, failbacks and manual takes seen (while the load runs) in
``forumcast_program_switches_total``.

Prints Markdown tables (``--json``: one JSON document instead); progress goes to stderr.
Everything is bounded: loopback only, the whole run is cut at ``--minutes`` + 5 minutes, and
every process it started is terminated (then killed) whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
# tests/ is no package: bench_relay and the exhibits' assets are imported by the names mypy gives them.
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "bench"), str(ROOT / "tests" / "exhibits")]

import assets  # noqa: E402
import bench_relay as relay  # noqa: E402
from bench_relay import SECRET  # noqa: E402

from server.auth import Tokens  # noqa: E402

STAGES = ("main", "forum")
CYCLE = 180.0  # seconds: one stage's round of takes (b, a, auto) and publisher drops
STAGE_OFFSET = 20.0  # the second stage's round starts this much later, so their events interleave
SAMPLE_EVERY = 10.0
COHORTS, RAMP_SECONDS = 4, 10.0
GROWTH_TARGET = 0.05
FD_MARGIN = 5
API_PATHS = (
    "/api/v1/event", "/api/v1/sessions", "/api/v1/stages", "/api/v1/stages/main", "/api/v1/stages/forum",
    "/api/v1/schedule.json", "/api/v1/schedule.ics", "/api/v1/exhibits?per_page=50",
    "/api/v1/exhibits?q=solar", "/api/v1/hall", "/hall.glb", "/metrics",
)  # fmt: skip


def event_yaml() -> str:
    stages, sessions = "", ""
    for stage in STAGES:
        stages += (
            f"  - {{id: {stage}, title: {{zh: {stage}, en: {stage.title()}}}, kind: forum, venue: loopback,\n"
            f"     inputs: [{{id: {stage}-a, title: A, kind: camera}},\n"
            f"              {{id: {stage}-b, title: B, kind: remote}}]}}\n"
        )
        sessions += (
            f"  - {{id: soak-{stage}, stage: {stage}, title: {{zh: 耐久, en: Soak}}, input: {stage}-a,\n"
            f"     backup_input: {stage}-b,\n"
            f"     start: 2020-01-01T00:00:00+00:00, end: 2099-01-01T00:00:00+00:00}}\n"
        )
    return (
        "event: {id: soak, title: {zh: 耐久测试, en: Soak}, timezone: UTC}\n"
        "venues: [{id: loopback, name: {zh: 本机, en: Loopback}, timezone: UTC}]\n"
        f"stages:\n{stages}sessions:\n{sessions}"
    )


def plan(stage_index: int) -> list[tuple[float, str, str]]:
    """One cycle of a stage's actions: (seconds into the cycle, verb, argument). Takes of ``b``,
    ``a``, then ``auto`` a minute apart; the primary dropped while automation has the stage (a
    failover to the backup and, 15 s after its return plus ``failback_after``, a failback);
    the backup dropped while the producer has ``a`` on air (no switch expected)."""
    stage = STAGES[stage_index]
    base = STAGE_OFFSET * stage_index
    actions = [
        (base + 30, "take", f"{stage}-b"), (base + 90, "take", f"{stage}-a"), (base + 150, "auto", stage),
        (base + 160, "kill", f"{stage}-a"), (base + 175, "start", f"{stage}-a"),
        (base + 100, "kill", f"{stage}-b"), (base + 115, "start", f"{stage}-b"),
    ]  # fmt: skip
    return sorted(actions)


# --- state --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    t: float  # seconds since the load started (negative: baseline)
    rss_kib: int
    fds: int
    threads: int
    task_failures: float
    viewers: float
    readyz: int
    load: float
    switches: dict[str, float] = field(default_factory=dict)  # so far, every stage: reason -> count


@dataclass(slots=True)
class Tally:
    samples: list[Sample] = field(default_factory=list)
    api: dict[str, int] = field(default_factory=dict)  # status (or error name) -> count
    api_5xx: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    waves: list[dict[str, Any]] = field(default_factory=list)
    publishers_started: int = 0


def proc_status(pid: int) -> tuple[int, int]:
    """(VmRSS KiB, threads) of a process."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]), int(fields["Threads"])


def metric_sum(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def switches(text: str) -> dict[str, dict[str, float]]:
    """``forumcast_program_switches_total`` by stage, then reason."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if line.startswith("forumcast_program_switches_total{"):
            labels = dict(
                part.split("=", 1)
                for part in line.split("{", 1)[1].split("}", 1)[0].split(",")
                if "=" in part
            )
            stage, reason = labels["stage"].strip('"'), labels["reason"].strip('"')
            out.setdefault(stage, {})[reason] = float(line.rsplit(" ", 1)[1])
    return out


class Soak:
    def __init__(
        self, options: argparse.Namespace, base: str, server: subprocess.Popen[bytes], workdir: Path
    ):
        self.options, self.base, self.server, self.workdir = options, base, server, workdir
        self.tokens = Tokens(SECRET)
        self.producer = self.tokens.issue("producer", ttl=timedelta(hours=3), subject="soak")
        self.tally = Tally()
        self.publishers: dict[str, subprocess.Popen[bytes]] = {}
        self.waves: set[asyncio.subprocess.Process] = set()
        self.start = time.monotonic()
        self.end = self.start + options.minutes * 60
        self.env = server_env()
        self.switches: dict[str, dict[str, float]] = {}
        self.loadtest = relay.loadtest_command()  # asks ``forumcast loadtest --help``: once, not per wave
        # Built before the load starts: trimesh would hold the event loop for seconds.
        self.models = [
            ("tower.stl", assets.export(assets.tower(), "stl")),
            ("sphere.glb", assets.textured_glb()),
        ]

    def now(self) -> float:
        return time.monotonic() - self.start

    def log(self, text: str) -> None:
        print(f"[{self.now():7.1f} s] {text}", file=sys.stderr, flush=True)

    async def sample(self, http: aiohttp.ClientSession) -> Sample:
        pid = self.server.pid
        rss, threads = proc_status(pid)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        async with http.get(f"{self.base}/readyz") as response:
            ready = response.status
        async with http.get(f"{self.base}/metrics") as response:
            metrics = await response.text()
        self.switches = switches(metrics)
        by_reason: dict[str, float] = {}
        for counts in self.switches.values():
            for reason, count in counts.items():
                by_reason[reason] = by_reason.get(reason, 0) + count
        return Sample(
            round(self.now(), 1), rss, fds, threads, metric_sum(metrics, "forumcast_task_failures_total"),
            metric_sum(metrics, "forumcast_viewers"), ready, os.getloadavg()[0], by_reason,
        )  # fmt: skip

    async def sampler(self, http: aiohttp.ClientSession) -> None:
        while self.now() < self.options.minutes * 60:
            sample = await self.sample(http)
            self.tally.samples.append(sample)
            self.log(
                f"RSS {sample.rss_kib / 1024:.1f} MiB, {sample.fds} fds, {sample.threads} threads, "
                f"{sample.viewers:.0f} viewers, readyz {sample.readyz}, load {sample.load:.2f}"
            )
            await asyncio.sleep(SAMPLE_EVERY - self.now() % SAMPLE_EVERY)

    # --- publishers ---------------------------------------------------------------------------

    def start_publisher(self, input_id: str) -> None:
        log = (self.workdir / f"publish-{input_id}.log").open("a")
        self.publishers[input_id] = subprocess.Popen(
            [sys.executable, "-m", "clients", "publish", "--test-pattern", "--server", self.base,
             "--input", input_id, "--key", self.tokens.stream_key(input_id), "--takeover", "--quiet"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        self.tally.publishers_started += 1

    def kill_publisher(self, input_id: str) -> None:
        proc = self.publishers.pop(input_id)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(5)

    # --- the stage's actions --------------------------------------------------------------------

    async def stage_loop(self, http: aiohttp.ClientSession, index: int) -> None:
        headers = {"Authorization": f"Bearer {self.producer}"}
        for cycle in itertools.count():
            for at, verb, arg in plan(index):
                due = cycle * CYCLE + at
                if due >= self.options.minutes * 60:
                    return
                await asyncio.sleep(max(0.0, due - self.now()))
                if verb in ("kill", "start"):
                    self.kill_publisher(arg) if verb == "kill" else self.start_publisher(arg)
                    status = 0
                else:
                    stage = STAGES[index]
                    url = f"{self.base}/api/v1/stages/{stage}/{verb}"
                    body = {"input": arg} if verb == "take" else {}
                    async with http.post(url, json=body, headers=headers) as response:
                        status = response.status
                        if status >= 500:
                            self.tally.api_5xx.append(f"POST {url} {status}")
                self.tally.actions.append(
                    {"t": round(self.now(), 1), "verb": verb, "arg": arg, "status": status}
                )
                self.log(f"{verb} {arg}" + (f" -> {status}" if status else ""))

    # --- viewers ----------------------------------------------------------------------------------

    async def cohort(self, index: int) -> None:
        wave = self.options.wave
        share = max(1, self.options.viewers // COHORTS)
        await asyncio.sleep(index * wave / COHORTS)
        for number in itertools.count():
            duration = min(wave, self.end - time.monotonic())
            if duration < RAMP_SECONDS:
                return
            stage = STAGES[(index + number) % len(STAGES)]
            proc = await asyncio.create_subprocess_exec(
                *self.loadtest, "--server", self.base, "--stage", stage, "--viewers", str(share),
                "--ramp-per-second", str(share / RAMP_SECONDS), "--duration", f"{duration:.1f}",
                "--joins", "0", "--json",
                cwd=ROOT, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            self.waves.add(proc)
            try:
                out, _ = await proc.communicate()
            finally:
                self.waves.discard(proc)
            try:
                report = json.loads(out)
            except ValueError:
                report = {}
            wave_figures = {
                k: report.get(k) for k in ("connected", "failed", "held", "disconnects", "drops", "errors")
            }
            self.tally.waves.append(
                {"cohort": index, "stage": stage, "viewers": share, "exit": proc.returncode} | wave_figures
            )

    # --- uploads and API traffic ------------------------------------------------------------------

    async def uploads(self, http: aiohttp.ClientSession) -> None:
        async with http.get(f"{self.base}/api/v1/exhibits?per_page=20") as response:
            exhibits = [item["id"] for item in (await response.json())["items"]]
        for number in itertools.count():
            due = (number + 0.5) * self.options.upload_every
            if due >= self.options.minutes * 60 - 10:
                return
            await asyncio.sleep(max(0.0, due - self.now()))
            exhibit = exhibits[number % len(exhibits)]
            name, data = self.models[number % len(self.models)]
            token = self.tokens.issue(f"exhibitor:{exhibit}", ttl=timedelta(hours=1))
            headers = {"Authorization": f"Bearer {token}"}
            started, state = time.monotonic(), "refused"
            url = f"{self.base}/api/v1/exhibits/{exhibit}/model?filename={name}"
            async with http.post(url, data=data, headers=headers) as response:
                status = response.status
                job = response.headers.get("Location") if status == 202 else None
            if status >= 500:
                self.tally.api_5xx.append(f"POST {url} {status}")
            while job is not None and time.monotonic() - started < 120:
                async with http.get(f"{self.base}{job}", headers=headers) as response:
                    state = (await response.json()).get("state", "?") if response.status == 200 else "?"
                if state in ("done", "failed"):
                    break
                await asyncio.sleep(0.25)
            seconds = round(time.monotonic() - started, 2)
            self.tally.uploads.append(
                {"exhibit": exhibit, "file": name, "status": status, "state": state, "s": seconds}
            )
            self.log(f"upload {name} to {exhibit}: {status} {state} in {seconds} s")

    async def api(self, http: aiohttp.ClientSession) -> None:
        paths = itertools.cycle(API_PATHS)
        every = 1 / self.options.api_rate
        for number in itertools.count():
            await asyncio.sleep(max(0.0, number * every - self.now()))
            if self.now() >= self.options.minutes * 60:
                return
            url = f"{self.base}{next(paths)}"
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                    await response.read()
                    key = str(response.status)
                    if response.status >= 500:
                        self.tally.api_5xx.append(f"GET {url} {response.status}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                key = type(exc).__name__
            self.tally.api[key] = self.tally.api.get(key, 0) + 1

    async def run(self) -> None:
        self.start = time.monotonic()
        self.end = self.start + self.options.minutes * 60
        async with aiohttp.ClientSession() as http:
            tasks = [
                self.sampler(http), self.uploads(http), self.api(http),
                *(self.stage_loop(http, i) for i in range(len(STAGES))),
                *(self.cohort(i) for i in range(COHORTS)),
            ]  # fmt: skip
            for input_id in (f"{s}-{x}" for s in STAGES for x in "ab"):
                self.start_publisher(input_id)
            await asyncio.gather(*tasks)

    def stop_clients(self) -> None:
        """Terminate the publishers and any viewer wave still running."""
        for proc in self.publishers.values():
            relay.stop(proc)
        self.publishers.clear()
        for wave in self.waves:
            with contextlib.suppress(ProcessLookupError):
                wave.kill()


def server_env() -> dict[str, str]:
    env = {**os.environ, "FORUMCAST_SECRET": SECRET, "FORUMCAST_DEMO_INPUTS": "false"}
    env |= {"FORUMCAST_DEMO_MODELS": "false", "FORUMCAST_MAX_VIEWERS_PER_IP": "20000"}
    env.pop("PYTHONASYNCIODEBUG", None)  # debug mode would slow every process down
    return env


# --- the verdict --------------------------------------------------------------------------------


def windows(minutes: float) -> tuple[float, float]:
    """(warm-up, comparison window) in seconds: a fifth of the run (1..5 min), and two minutes
    (or half of what is left after the warm-up, if less)."""
    warmup = min(5.0, max(1.0, minutes / 5)) * 60
    return warmup, min(120.0, (minutes * 60 - warmup) / 2)


def median_rss(samples: list[Sample], start: float, end: float) -> float | None:
    values = [s.rss_kib for s in samples if start <= s.t < end]
    return statistics.median(values) / 1024 if values else None


def check(target: str, met: bool, result: str) -> dict[str, Any]:
    return {"target": target, "met": met, "result": result}


def verdict(
    options: argparse.Namespace, tally: Tally, baseline: Sample, after_fds: int
) -> list[dict[str, Any]]:
    run = options.minutes * 60
    warmup, window = windows(options.minutes)
    first = median_rss(tally.samples, warmup, warmup + window)
    last = median_rss(tally.samples, run - window, run + 1)
    growth = (last - first) / first if first and last else None
    grew = "no samples"
    if growth is not None:
        grew = f"{growth * 100:+.1f} % ({first:.1f} → {last:.1f} MiB, median of minutes "
        grew += f"{warmup / 60:g}–{(warmup + window) / 60:g} vs the last {window / 60:g})"
    failures = max((s.task_failures for s in tally.samples), default=0) - baseline.task_failures
    ready = sum(s.readyz == 200 for s in tally.samples)
    requests = sum(tally.api.values()) + len(tally.actions) + len(tally.uploads)
    # The last sample while the load ran: stopping the publishers at the end fails over again.
    seen = tally.samples[-1].switches if tally.samples else {}
    total = {r: seen.get(r, 0) for r in ("failover", "failback", "manual", "schedule")}
    done = sum(u["state"] == "done" for u in tally.uploads)
    peak = max((s.fds for s in tally.samples), default=0)
    return [
        check("RSS growth after warm-up ≤ 5 %", growth is not None and growth <= GROWTH_TARGET, grew),
        check(
            f"file descriptors back to baseline (± {FD_MARGIN}) after the load",
            abs(after_fds - baseline.fds) <= FD_MARGIN,
            f"{baseline.fds} before, {after_fds} after (peak {peak})",
        ),
        check("no task failures", failures == 0, f"{failures:g}"),
        check(
            "/readyz 200 throughout", ready == len(tally.samples), f"{ready} of {len(tally.samples)} samples"
        ),
        check("no 5xx", not tally.api_5xx, f"{len(tally.api_5xx)} of {requests} requests"),
        check("every model upload done", done == len(tally.uploads) > 0, f"{done} of {len(tally.uploads)}"),
        check(
            "failovers, failbacks and takes observed",
            min(total["failover"], total["failback"], total["manual"]) > 0,
            ", ".join(f"{r} {v:g}" for r, v in total.items()),
        ),
    ]


def markdown_row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def counts(sample: Sample) -> str:
    return " / ".join(f"{sample.switches.get(r, 0):g}" for r in ("failover", "failback", "manual"))


def report_tables(tally: Tally, checks: list[dict[str, Any]], baseline: Sample) -> str:
    b = baseline
    rows = [
        "| minute | RSS MiB (median) | fds (max) | threads (max) | viewers (min–max) | readyz | load avg"
        " | switches so far: failover / failback / manual |",
        "|---:|---:|---:|---:|---:|---|---:|---:|",
        markdown_row(
            "before", f"{b.rss_kib / 1024:.1f}", b.fds, b.threads, 0, b.readyz, f"{b.load:.2f}", counts(b)
        ),
    ]
    for minute, group in itertools.groupby(tally.samples, key=lambda s: int(s.t // 60)):
        g = list(group)
        rows.append(
            markdown_row(
                f"{minute}–{minute + 1}",
                f"{statistics.median(s.rss_kib for s in g) / 1024:.1f}",
                max(s.fds for s in g),
                max(s.threads for s in g),
                f"{min(s.viewers for s in g):.0f}–{max(s.viewers for s in g):.0f}",
                "200" if all(s.readyz == 200 for s in g) else "/".join(str(s.readyz) for s in g),
                f"{max(s.load for s in g):.2f}",
                counts(g[-1]),
            )
        )
    targets = ["| target | result | met |", "|---|---|---|"]
    targets += [markdown_row(c["target"], c["result"], "met" if c["met"] else "**missed**") for c in checks]
    return "\n".join(rows) + "\n\n" + "\n".join(targets)


def viewer_summary(tally: Tally) -> str:
    waves = tally.waves

    def total(key: str) -> int:
        return sum(w.get(key) or 0 for w in waves)

    return (
        f"{len(waves)} viewer waves: {total('connected')} joins, {total('failed')} failed,"
        f" {total('held')} held to their end, {total('disconnects')} disconnected by the server,"
        f" {total('drops')} drops; "
        f"API: {dict(sorted(tally.api.items()))}; {tally.publishers_started} publisher starts"
    )


async def settle_fds(pid: int, baseline: int, timeout: float = 30.0) -> int:
    """The server's open file descriptors once they are back within the margin (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        if abs(fds - baseline) <= FD_MARGIN or time.monotonic() > deadline:
            return fds
        await asyncio.sleep(1.0)


async def soak(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = relay.free_port()
    base = f"http://127.0.0.1:{port}"
    event = workdir / "event.yaml"
    event.write_text(event_yaml())
    log: IO[str] = (workdir / "server.log").open("w")
    server = relay.start_server(event, port, workdir, server_env(), log, "info")  # every switch logged
    bench: Soak | None = None
    try:
        await asyncio.to_thread(
            relay.wait_for, "server health", lambda: relay.http_get(f"{base}/readyz"), 60, server
        )
        await asyncio.sleep(5.0)  # the hall's first build and the slates settle
        bench = Soak(options, base, server, workdir)
        async with aiohttp.ClientSession() as http:
            baseline = await bench.sample(http)
        baseline.t = -1.0
        print(
            f"baseline: RSS {baseline.rss_kib / 1024:.1f} MiB, {baseline.fds} fds",
            file=sys.stderr,
            flush=True,
        )
        async with asyncio.timeout(options.minutes * 60 + 300):
            try:
                await bench.run()
            finally:
                bench.stop_clients()
            async with aiohttp.ClientSession() as http:
                final = await bench.sample(http)
            after_fds = await settle_fds(server.pid, baseline.fds)
        seen = bench.switches  # after the load, the publishers' exit included
        checks = verdict(options, bench.tally, baseline, after_fds)
        return {
            "baseline": asdict(baseline), "final": asdict(final), "fds_after": after_fds, "switches": seen,
            "checks": checks, "tally": asdict(bench.tally), "_baseline": baseline, "_tally": bench.tally,
        }  # fmt: skip
    finally:
        if bench is not None:
            bench.stop_clients()
        relay.stop(server, 15)
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="soak benchmark (see the module docstring)")
    parser.add_argument(
        "--minutes", type=float, default=60.0, help="how long the load runs (60; 5 is the short variant)"
    )
    parser.add_argument("--viewers", type=int, default=1000, help="viewers at most at once (1000)")
    parser.add_argument("--wave", type=float, default=60.0, help="seconds a cohort of viewers stays (60)")
    parser.add_argument("--upload-every", type=float, default=30.0, help="seconds between model uploads (30)")
    parser.add_argument("--api-rate", type=float, default=3.0, help="API GETs per second (3)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the tables")
    parser.add_argument("--keep", type=Path, help="keep the event file and the logs in this folder")
    args = parser.parse_args(argv)
    if not 3 <= args.minutes <= 24 * 60 or not COHORTS <= args.viewers <= 10_000:
        parser.error("--minutes must be 3..1440 and --viewers 4..10000")
    if not 20 <= args.wave <= 600 or args.upload_every < 5 or not 0.1 <= args.api_rate <= 50:
        parser.error("--wave must be 20..600 s, --upload-every ≥ 5 s, --api-rate 0.1..50")
    with tempfile.TemporaryDirectory(prefix="forumcast-soak-") as scratch:
        workdir = args.keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(soak(args, workdir))
    tally, baseline = result.pop("_tally"), result.pop("_baseline")
    machine = relay.machine_line() + f", load average at the end {os.getloadavg()[0]:.2f}"
    if args.json:
        print(
            json.dumps(
                {"machine": machine, "options": {k: str(v) for k, v in vars(args).items()}} | result, indent=2
            )
        )
    else:
        print(f"\n{machine}\n\n{report_tables(tally, result['checks'], baseline)}\n\n{viewer_summary(tally)}")
        print(f"switches: {result['switches']}")
    return 0 if all(c["met"] for c in result["checks"]) else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a terminated run still stops what it started
    sys.exit(main())
