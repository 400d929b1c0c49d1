"""The HTTP front benchmark: nginx with the shipped ``deploy/nginx/forumcast.conf`` before one
forumcast origin, against nginx serving the same files from disk.

Run on demand from the repository root (pytest does not collect ``tests/bench``)::

    apt-get install -y nginx wrk nodejs   # once; the script names what is missing
    .venv/bin/python tests/bench/bench_front.py                      # defaults: 1,000 and 5,000 players
    .venv/bin/python tests/bench/bench_front.py --players 1000 --duration 15 --wrk-duration 4  # a trial

Three measures, side by side in one invocation, everything on loopback:

1. **LL-HLS through the front.** ``forumcast serve`` (stage ``main`` on air by the schedule)
   with bench_relay's live test pattern publishing to it (1 Mbps + AAC, 200 ms fragments,
   each stamped with the moment its first frame entered the encoder, which the origin's
   ``EXT-X-PROGRAM-DATE-TIME`` carries), and the front: Debian's nginx with the shipped site
   file, its upstream, port, cache and log paths rewritten to the test's by
   :func:`tests.support.front.rewrite_site` (the topology tests' own), inside a main
   ``nginx.conf`` like Debian's with one worker and room for every player's connection
   (:data:`MAIN_CONF`). Then
   ``tests/bench/front_players.mjs`` (Node: one Python process cannot ask 50k requests/s on a
   core) plays ``--players`` simulated LL-HLS players (1,000 and 5,000 by default) at the live
   edge through the front: blocking reload for the next part (``_HLS_msn``/``_HLS_part``),
   then the part, one keep-alive connection each, joining at ``--ramp`` per second; the
   steady phase lasts ``--duration`` from 3 s after the last joined. Measured over it:
   requests/s; the server CPU = every nginx process of the front +
   the origin (``/proc/PID/stat``), so requests/s per server core; glass-to-glass = a player
   has the part − the part's start on the wall clock (its segment's program date time plus
   the parts before it), p50/p95 (target p95 ≤ 2 s); the generator's own CPU (a saturated
   generator, not the servers, bounds the rate: the table says so).

   The reference: a media playlist and the newest ten parts saved to disk, and ``wrk
   -c<players>`` alternating the playlist and a part (bench_hls's mix) against nginx (one
   worker) serving them from disk; the same wrk against the front (cache hits, origin
   included in its CPU) for a like-for-like closed loop. The ratio the target is about
   (≥ 0.5): the front's requests/s per server core with players ÷ nginx's from disk per core.

2. **Origin requests per part per front** (target ≤ 1.1): the origin's
   ``forumcast_http_requests_total`` for its part and playlist routes before and after each
   player run, divided by the parts the origin made meanwhile (its preload hint's number
   before and after). Each part has two cacheable URLs a player needs (the blocking reload
   that announces it and the part itself): each should reach the origin once, so the
   figures are given per kind (2.0 in all is ideal). ``index.m3u8`` requests (one per player
   joining: the origin sends it ``no-cache``) are counted apart, with how long joins took.
   The front's access log gives the cache statuses by kind over the same run.

3. **Model files** (40 KB, 400 KB, 4 MB GLBs, bench_serving's): ``wrk -t1 -c64`` through the
   front (a fresh origin holding the files; the first request of each is a miss, checked,
   and then every request is a hit) and against nginx (one worker) serving the same files
   from disk, in turn (``--repeat`` rounds, the best of each); target ≥ 0.9 of nginx's
   requests/s, also given per server core.

``--site FILE`` measures a candidate site file instead of the shipped one (the header line
names the file measured).

Pinning (``--no-pin`` leaves it to the scheduler): the servers (front, origin) and the
publisher on core 0, the load generators (Node players, wrk) alone on core 1, since they
are the first thing to saturate. Per-core figures divide by the CPU each server used,
whatever else ran on its core.

Bounded: each player run stops by itself (``--duration`` ≤ 120 s), each wrk run too
(``--wrk-duration`` ≤ 10 s), the whole run is cut at 900 s; every process started is stopped
(process groups, terminated then killed) whatever happens. ``--json-out FILE`` keeps every
figure, ``--keep DIR`` the configs, logs and saved files.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "bench"), str(ROOT / "tests" / "live")]

import bench_hls as hls  # noqa: E402
import bench_relay as relay  # noqa: E402
import bench_serving as serving  # noqa: E402
from bench_program import markdown, revision  # noqa: E402
from bench_relay import STAGE  # noqa: E402

from tests.support.front import SHIPPED_SITE as SHIPPED  # noqa: E402
from tests.support.front import rewrite_site  # noqa: E402

PLAYERS_JS = Path(__file__).resolve().parent / "front_players.mjs"
INSTALL = "apt-get install -y nginx wrk nodejs"
SERVER_CORE, LOAD_CORE = 0, 1
HLS_RATIO_TARGET, GLASS_P95_TARGET_MS, ORIGIN_PER_PART_TARGET, MODEL_RATIO_TARGET = 0.5, 2000.0, 1.1, 0.9
MODEL_CONNECTIONS = 64
SAMPLE_EVERY = 0.5
HARD_LIMIT, MAX_ESTIMATE = 900.0, 840.0

#: The main nginx.conf around the shipped site file: Debian's (sendfile, mime types), with one
#: worker like the reference nginx (both pinned to one core: a second worker there would only add
#: context switches) and room for every player's connection (Debian's 768 per worker, or the
#: nginx image's 1,024, hold far fewer than 5,000 viewers).
MAIN_CONF = """\
{user}worker_processes 1;
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


# --- the front ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Front:
    base: str
    proc: subprocess.Popen[bytes]  # nginx's master, leading its process group (the workers)
    access_log: Path


@contextlib.contextmanager
def front(
    workdir: Path, origin: str, cpu: int | None, tag: str, site_file: Path = SHIPPED
) -> Iterator[Front]:
    """nginx with the shipped site file (or ``site_file``) before ``origin`` (host:port), on a
    free port."""
    port = relay.free_port()
    prefix = workdir / f"front-{tag}"
    prefix.mkdir(parents=True, exist_ok=True)
    # A cache left by an earlier run (--keep) would answer playlist URLs of another origin run.
    shutil.rmtree(prefix / "cache", ignore_errors=True)
    site = prefix / "forumcast.conf"
    text = rewrite_site(site_file.read_text(), upstreams=[origin], port=port, workdir=prefix)
    # The tests log errors at info level; the shipped file logs at nginx's default (error).
    site.write_text(re.sub(r"^(\s*error_log \S+) info;$", r"\1;", text, flags=re.MULTILINE))
    conf = prefix / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # nobody could not read a 0700 temp dir
    nofile = min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])  # nginx cannot pass the hard limit
    conf.write_text(MAIN_CONF.format(user=user, prefix=prefix, site=site, nofile=nofile))
    nginx = str(serving.nginx_binary())
    checked = subprocess.run(
        [nginx, "-t", "-c", str(conf), "-p", str(prefix)], capture_output=True, text=True
    )
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t failed for the front:\n{checked.stderr}")
    log = (prefix / "stderr.log").open("wb")
    proc = None
    try:
        proc = subprocess.Popen(
            [*hls.pin(cpu), nginx, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        serving.wait_until_up(f"{base}/healthz", proc, "the front")
        yield Front(base, proc, prefix / "access.log")
    finally:
        serving.stop_group(proc)
        log.close()


def cache_statuses(log: Path, start: int) -> dict[str, dict[str, int]]:
    """kind → cache status → count, from the front's access log after byte ``start``."""
    counts: dict[str, Counter[str]] = {}
    with log.open("rb") as f:
        f.seek(start)
        for raw in f:
            fields = raw.split(b" ", 4)
            if len(fields) >= 4 and fields[0] == b"forumcast-front/1":
                counts.setdefault(fields[1].decode(), Counter())[fields[3].decode()] += 1
    return {kind: dict(c) for kind, c in sorted(counts.items())}


# --- CPU ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Ticks:
    """CPU ticks of the servers and the rest at one moment (Unix time)."""

    at: float
    front: int
    origin: int
    others: dict[str, int]
    core: hls.CoreTicks


def pid_ticks(pid: int) -> int:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return 0


def ticks(front_pgid: int, origin: int, others: dict[str, int]) -> Ticks:
    return Ticks(
        time.time(),
        serving.group_ticks(front_pgid),
        pid_ticks(origin),
        {name: pid_ticks(pid) for name, pid in others.items()},
        hls.core_ticks(SERVER_CORE),
    )


def cpu_between(a: Ticks, b: Ticks) -> dict[str, float | None]:
    """CPU % of one core of each process between two samples, and the servers' core's busy %."""
    seconds = b.at - a.at
    if seconds <= 0:
        return {}

    def pct(before: int, after: int) -> float:
        return round((after - before) / serving.CLK_TCK / seconds * 100, 1)

    out: dict[str, float | None] = {"front": pct(a.front, b.front), "origin": pct(a.origin, b.origin)}
    out |= {name: pct(a.others[name], b.others[name]) for name in a.others}
    out["core_busy"] = hls.core_pct([a.core, b.core])
    return out


# --- LL-HLS: the players --------------------------------------------------------------------------


def origin_counts(base: str) -> dict[str, float]:
    """The origin's answered requests so far, by kind: media playlist (plain and blocking
    reloads), part, and multivariant playlist (``index``: once per player joining)."""
    counts = {"playlist": 0.0, "part": 0.0, "index": 0.0}
    for line in relay.http_get(f"{base}/metrics", 5).splitlines():
        if not line.startswith("forumcast_http_requests_total{"):
            continue
        route = line.split('route="', 1)[1].split('"', 1)[0]
        kinds = {"/part/": "part", "/media.m3u8": "playlist", "/index.m3u8": "index"}
        kind = next((k for marker, k in kinds.items() if marker in route), None)
        if kind is not None and route.startswith("/live/"):
            counts[kind] += float(line.rsplit(" ", 1)[1])
    return counts


def next_part(base: str) -> int:
    """The number of the part the origin makes next (its preload hint)."""
    return hls.newest(relay.http_get(f"{base}/live/{STAGE}/media.m3u8", 5))[2]


def run_players(
    air: hls.OnAir, edge: Front, players: int, options: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """``players`` Node players through the front; the servers' CPU over their steady phase,
    the origin's requests per part over the whole run."""
    out = workdir / f"players-{players}.json"
    host, port = edge.base.removeprefix("http://").rsplit(":", 1)
    log_start = edge.access_log.stat().st_size if edge.access_log.exists() else 0
    parts_before = next_part(air.base)
    counts_before = origin_counts(air.base)
    samples: list[Ticks] = []
    with (workdir / f"players-{players}.log").open("w") as log:
        loader = subprocess.Popen(
            [*hls.pin(LOAD_CORE if options.pin else None), options.node, str(PLAYERS_JS), host, port, STAGE,
             str(players), f"{options.duration:g}", f"{options.ramp:g}", str(out)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            others = {"loader": loader.pid, "publisher": air.publisher.pid}
            # front_players.mjs stops by itself by then: ramp + 20 s slack, settle, steady, 6 s to end
            limit = time.monotonic() + players / options.ramp + options.duration + 60
            while loader.poll() is None:
                if time.monotonic() > limit:  # it reports what it has on SIGTERM
                    print("   the players overran: stopping them", file=sys.stderr, flush=True)
                    loader.send_signal(signal.SIGTERM)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        loader.wait(20)
                    break
                samples.append(ticks(edge.proc.pid, air.server.pid, others))
                time.sleep(SAMPLE_EVERY)
        finally:
            serving.stop_group(loader)
    counts_after = origin_counts(air.base)
    parts_after = next_part(air.base)
    if loader.returncode not in (0, 3) or not out.exists():  # 3: stopped, with a report
        raise RuntimeError(f"the players exited with {loader.returncode}: see {log.name}")
    report = json.loads(out.read_text())
    steady = [s for s in samples if (report["steady_from"] or 0) <= s.at <= (report["steady_to"] or 0)]
    cpu = cpu_between(steady[0], steady[-1]) if len(steady) >= 2 else {}
    seconds = report["steady_s"]
    requests = sum(report["requests"].values())
    made = parts_after - parts_before
    origin = {kind: counts_after[kind] - counts_before[kind] for kind in counts_before}
    return {
        "players": players,
        "joined": report["joined"],
        "steady_s": round(seconds, 1),
        "requests_s": requests / seconds if seconds > 0 else None,
        "reloads_s": report["requests"]["reload"] / seconds if seconds > 0 else None,
        "parts_s": report["requests"]["part"] / seconds if seconds > 0 else None,
        "bytes_s": sum(report["bytes"].values()) / seconds if seconds > 0 else None,
        "cpu_pct": cpu,
        "glass_ms": report["glass_ms"],
        "fanout_ms": report["fanout_ms"],
        "held_ms": report["held_ms"],
        "join_ms": report["join_ms"],
        "parts_per_player_s": report["parts_per_player_s"],
        "errors": report["errors"],
        "reconnects": report["reconnects"],
        "parts_made": made,
        "origin_requests": origin,
        "origin_per_part": {kind: (n / made if made else None) for kind, n in origin.items()},
        "cache": cache_statuses(edge.access_log, log_start) if edge.access_log.exists() else {},
    }


# --- wrk ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class WrkRun(serving.WrkLoad):
    """A wrk run and the servers' CPU: the front (or static nginx) and the origin, if any."""

    front_cpu_pct: float
    origin_cpu_pct: float
    core_busy_pct: float | None

    @property
    def per_core(self) -> float | None:
        used = self.front_cpu_pct + self.origin_cpu_pct
        return self.requests_s / (used / 100) if used > 0 else None


def run_wrk(
    base: str,
    path_or_script: str | Path,
    server_pgid: int,
    origin_pid: int | None,
    connections: int,
    options: argparse.Namespace,
) -> WrkRun:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{options.wrk_duration:g}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    if isinstance(path_or_script, Path):
        command += ["-s", str(path_or_script), base]
    else:
        command.append(base + path_or_script)
    started = time.time()

    def sample() -> tuple[int, hls.CoreTicks]:
        return (pid_ticks(origin_pid) if origin_pid else 0), hls.core_ticks(SERVER_CORE)

    load, before, after = serving.measure_wrk(
        [*hls.pin(LOAD_CORE if options.pin else None), *command],
        server_pgid,
        options.wrk_duration + 30,
        sample,
    )
    seconds = time.time() - started
    return WrkRun(
        **dataclasses.asdict(load),
        front_cpu_pct=load.server_cpu_pct,
        origin_cpu_pct=(after[0] - before[0]) / serving.CLK_TCK / seconds * 100,
        core_busy_pct=hls.core_pct([before[1], after[1]]) if options.pin else None,
    )


def best(what: str, repeat: int, *args: Any) -> WrkRun:
    """The best of ``repeat`` :func:`run_wrk` runs (other work on a shared machine only ever
    makes a run slower)."""
    results = []
    for _ in range(repeat):
        results.append(run_wrk(*args))
        r = results[-1]
        print(
            f"   {what}: {r.requests_s:,.0f} req/s, {r.bytes_s / 2**20:,.1f} MiB/s, CPU front/static"
            f" {r.front_cpu_pct:.0f} % origin {r.origin_cpu_pct:.0f} %, wrk {r.wrk_cpu_pct:.0f} %"
            f"{', ' + r.errors if r.errors else ''}",
            file=sys.stderr,
            flush=True,
        )
    return max(results, key=lambda r: r.requests_s)


# --- the measures ---------------------------------------------------------------------------------


def measure_hls(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    core = SERVER_CORE if options.pin else None
    wrk_s = len(options.players) * 2 * options.repeat * (options.wrk_duration + 4)
    seconds = len(options.players) * (options.duration + 10) + wrk_s + 60
    result: dict[str, Any] = {"runs": []}
    files = workdir / "files"
    with hls.stage_on_air(workdir, "front", seconds, server_cpu=core, publisher_cpu=core) as air:
        origin = air.base.removeprefix("http://")
        with front(workdir, origin, core, "hls", options.site) as edge:
            relay.http_get(f"{edge.base}/live/{STAGE}/index.m3u8", 5)  # the front answers
            for players in options.players:
                print(
                    f"== LL-HLS: {players} players, {options.duration:g} s ...", file=sys.stderr, flush=True
                )
                run = run_players(air, edge, players, options, workdir)
                print(f"   {_players_line(run)}", file=sys.stderr, flush=True)
                time.sleep(2.0)  # the players' connections close
                paths = hls.save_files(edge.base, files)
                script = hls.write_script(workdir, "mix", paths)
                what = f"wrk -c{players} mix, the front"
                front_args = (edge.base, script, edge.proc.pid, air.server.pid, players, options)
                run["front_wrk"] = best(what, options.repeat, *front_args)
                with hls.nginx(workdir, files, core) as (static_base, static):
                    hls.check_same(paths, edge.base, static_base)
                    what = f"wrk -c{players} mix, nginx from disk"
                    static_args = (static_base, script, static.pid, None, players, options)
                    run["static_wrk"] = best(what, options.repeat, *static_args)
                result["runs"].append(run)
    return result


def measure_models(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """wrk on each file through the front and from nginx's disk, in turn (``--repeat`` rounds:
    the best run of each counts), so that other work on a shared machine hits both alike."""
    core = SERVER_CORE if options.pin else None
    data_dir = workdir / "models-data"
    todo = [c for c in serving.cases(serving.prepare(data_dir)) if c.label in serving.SIZES]
    result: dict[str, dict[str, WrkRun]] = {"front": {}, "static": {}}
    with (
        serving.forumcast(workdir, data_dir, log_level="warning", cpu=core) as origin,
        front(workdir, origin.base.removeprefix("http://"), core, "models", options.site) as edge,
        serving.nginx(workdir, data_dir, workers="1", cpu=core) as static,
    ):
        server = serving.Server("front", edge.base, edge.proc, options.pin)
        for case in todo:
            serving.check(server, case, {})  # the miss: fetched from the origin, checked
            hit = serving.fetch(edge.base + case.path)
            if hit.headers.get("X-Cache-Status") != "HIT" or hit.body != case.body:
                raise RuntimeError(f"front {case.label}: second request not a HIT ({hit.headers})")
            serving.check(static, case, {})
            runs: dict[str, list[WrkRun]] = {"front": [], "static": []}
            for _ in range(options.repeat):
                runs["front"].append(
                    best(f"models {case.label}, the front", 1, edge.base, case.path, edge.proc.pid,
                         origin.proc.pid, MODEL_CONNECTIONS, options)
                )  # fmt: skip
                runs["static"].append(
                    best(f"models {case.label}, nginx from disk", 1, static.base, case.path, static.proc.pid,
                         None, MODEL_CONNECTIONS, options)
                )  # fmt: skip
            for key, done in runs.items():
                result[key][case.label] = max(done, key=lambda r: r.requests_s)
    return result


# --- output -------------------------------------------------------------------------------------


def cell(value: Any, digits: int = 0) -> str:
    return hls.cell(value, digits)


def met(ok: bool | None) -> str:
    return "-" if ok is None else "yes" if ok else "**no**"


def per_core(requests_s: float | None, cpu: dict[str, float | None]) -> float | None:
    used = (cpu.get("front") or 0) + (cpu.get("origin") or 0)
    return requests_s / (used / 100) if requests_s and used > 0 else None


def summary_table(results: dict[str, Any]) -> str:
    """The ratios and targets, one line each."""
    lines: list[list[Any]] = []
    for run in results.get("hls", {}).get("runs", []):
        n = run["players"]
        front_core = per_core(run["requests_s"], run["cpu_pct"])
        static_core = run["static_wrk"].per_core
        ratio = front_core / static_core if front_core and static_core else None
        loader = run["cpu_pct"].get("loader")
        limit = " (the generator's core was full)" if loader is not None and loader >= 90 else ""
        lines.append([
            f"LL-HLS, {n:,} players: req/s per server core, front + origin ÷ nginx from disk{limit}",
            f"{cell(front_core)} ÷ {cell(static_core)}", cell(ratio, 2), f"≥ {HLS_RATIO_TARGET:g}",
            met(None if ratio is None else ratio >= HLS_RATIO_TARGET),
        ])  # fmt: skip
        glass = run["glass_ms"]
        lines.append([
            f"LL-HLS, {n:,} players: glass-to-glass p50 / p95 ms",
            f"{cell(glass['p50'])} / {cell(glass['p95'])}", "-", f"p95 ≤ {GLASS_P95_TARGET_MS:g}",
            met(None if glass["p95"] is None else glass["p95"] <= GLASS_P95_TARGET_MS),
        ])  # fmt: skip
        per_part = run["origin_per_part"]
        for kind, what in (("playlist", "playlists (blocking reloads)"), ("part", "parts")):
            value = per_part[kind]
            lines.append([
                f"LL-HLS, {n:,} players: origin {what} per part made ({run['parts_made']} parts)",
                cell(run["origin_requests"][kind]), cell(value, 2), f"≤ {ORIGIN_PER_PART_TARGET:g}",
                met(None if value is None else value <= ORIGIN_PER_PART_TARGET),
            ])  # fmt: skip
    models = results.get("models")
    if models:
        for label, fr in models["front"].items():
            st = models["static"][label]
            ratio = fr.requests_s / st.requests_s if st.requests_s else None
            core_ratio = fr.per_core / st.per_core if fr.per_core and st.per_core else None
            lines.append([
                f"model {label}: req/s, front ÷ nginx from disk (both on core 0)",
                f"{cell(fr.requests_s)} ÷ {cell(st.requests_s)}", cell(ratio, 2), f"≥ {MODEL_RATIO_TARGET:g}",
                met(None if ratio is None else ratio >= MODEL_RATIO_TARGET),
            ])  # fmt: skip
            lines.append([
                f"model {label}: req/s per server core, front + origin ÷ nginx from disk",
                f"{cell(fr.per_core)} ÷ {cell(st.per_core)}", cell(core_ratio, 2), "(same, per CPU used)",
                met(None if core_ratio is None else core_ratio >= MODEL_RATIO_TARGET),
            ])  # fmt: skip
    return markdown("measure | figures | ratio | target | met?", "lrrll", lines)


def hls_table(results: dict[str, Any]) -> str:
    lines: list[list[Any]] = []
    for run in results["runs"]:
        n, cpu = run["players"], run["cpu_pct"]
        lines.append([
            f"front + origin, {n:,} LL-HLS players (Node)", cell(run["requests_s"]),
            f"{cell(run['reloads_s'])} / {cell(run['parts_s'])}",
            f"{cell(cpu.get('front'))} + {cell(cpu.get('origin'))}", cell(cpu.get("core_busy")),
            cell(per_core(run["requests_s"], cpu)), cell((run["bytes_s"] or 0) / 2**20, 1),
            f"{cell(cpu.get('loader'))} (Node)",
        ])  # fmt: skip
        for key, name in (("front_wrk", "front + origin"), ("static_wrk", "nginx 1 worker from disk")):
            r: WrkRun = run[key]
            lines.append([
                f"{name}, wrk -c{n:,} (playlist / part mix)", cell(r.requests_s), "½ / ½",
                f"{cell(r.front_cpu_pct)} + {cell(r.origin_cpu_pct)}", cell(r.core_busy_pct),
                cell(r.per_core), cell(r.bytes_s / 2**20, 1), f"{cell(r.wrk_cpu_pct)} (wrk)",
            ])  # fmt: skip
    table = markdown(
        "server, load | req/s | playlists / parts per s | server CPU % (nginx + origin) | core 0 busy %"
        " | req/s per server core | MiB/s | load generator CPU %",
        "lrrrrrrr",
        lines,
    )
    players = []
    for run in results["runs"]:
        g, f, h, rate = run["glass_ms"], run["fanout_ms"], run["held_ms"], run["parts_per_player_s"]
        players.append([
            f"{run['joined']:,} / {run['players']:,}", f"{cell(rate['p50'], 2)} / {cell(rate['min'], 2)}",
            f"{cell(g['p50'])} / {cell(g['p95'])} / {cell(g['p99'])} / {cell(g['max'])}",
            f"{cell(f['p50'])} / {cell(f['p95'])}", f"{cell(h['p50'])} / {cell(h['p95'])}",
            cell(run["cpu_pct"].get("publisher")),
            "; ".join(f"{k} {v}" for k, v in run["cache"].items() if k in ("playlist", "part")) or "-",
            f"{cell(run['origin_requests']['index'])}"
            f" ({cell(run['join_ms']['p50'])} / {cell(run['join_ms']['max'])})",
            "; ".join(f"{k}: {v}" for k, v in run["errors"].items()) or "none",
        ])  # fmt: skip
    detail = markdown(
        "players joined | parts/s per player p50 / min (live: 5) | glass-to-glass p50 / p95 / p99 / max ms"
        " | listed → at the player p50 / p95 ms | blocking reload held p50 / p95 ms | publisher CPU %"
        " | front cache statuses (access log) | origin index.m3u8 requests (join ms p50 / max) | errors",
        "rrrrrrlrl",
        players,
    )
    return table + "\n\n" + detail


def models_table(models: dict[str, Any]) -> str:
    lines = []
    for label, fr in models["front"].items():
        st = models["static"][label]
        lines.append([
            label, f"{cell(fr.requests_s)} ({cell(fr.bytes_s / 2**20)})",
            f"{cell(fr.front_cpu_pct)} + {cell(fr.origin_cpu_pct)} / {cell(fr.wrk_cpu_pct)}",
            f"{cell(st.requests_s)} ({cell(st.bytes_s / 2**20)})",
            f"{cell(st.front_cpu_pct)} / {cell(st.wrk_cpu_pct)}",
            f"**{fr.requests_s / st.requests_s:.2f}**" if st.requests_s else "-",
            f"{cell(fr.per_core)} / {cell(st.per_core)}",
            f"{fr.per_core / st.per_core:.2f}" if fr.per_core and st.per_core else "-",
        ])  # fmt: skip
    return markdown(
        "file | front req/s (MiB/s) | CPU % nginx + origin / wrk | nginx 1 worker from disk req/s (MiB/s)"
        " | CPU % nginx / wrk | ratio | req/s per server core, front / nginx | ratio per core",
        "lrrrrrrr",
        lines,
    )


def _players_line(run: dict[str, Any]) -> str:
    cpu, g = run["cpu_pct"], run["glass_ms"]
    return (
        f"{run['joined']}/{run['players']} joined, {cell(run['requests_s'])} req/s, CPU front"
        f" {cpu.get('front')} % origin {cpu.get('origin')} % publisher {cpu.get('publisher')} % players"
        f" {cpu.get('loader')} %, glass p50 {g['p50']} p95 {g['p95']} ms, origin per part"
        f" {run['origin_per_part']}, cache {run['cache']}, errors {run['errors'] or 'none'}"
    )


def command_line(options: argparse.Namespace) -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    words = [str(python), str(Path(__file__).resolve().relative_to(ROOT))]
    words += ["--players", ",".join(map(str, options.players)), "--duration", f"{options.duration:g}"]
    words += ["--ramp", f"{options.ramp:g}", "--wrk-duration", f"{options.wrk_duration:g}"]
    words += ["--repeat", str(options.repeat)]
    words += [] if options.site == SHIPPED else ["--site", str(options.site)]
    for flag, on in (("--skip-hls", options.skip_hls), ("--skip-models", options.skip_models),
                     ("--no-pin", not options.pin)):  # fmt: skip
        words += [flag] if on else []
    return shlex.join(words)


def estimate(options: argparse.Namespace) -> float:
    total = 0.0
    if not options.skip_hls:
        total += 30 + sum(
            n / options.ramp + options.duration + 8 + 2 * options.repeat * (options.wrk_duration + 4)
            for n in options.players
        )
    if not options.skip_models:
        total += 10 + 2 * len(serving.SIZES) * options.repeat * (options.wrk_duration + 2)
    return total


def serialisable(value: Any) -> Any:
    if isinstance(value, WrkRun):
        return {**dataclasses.asdict(value), "per_core": value.per_core}
    if isinstance(value, dict):
        return {k: serialisable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [serialisable(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HTTP front benchmark (see the module docstring)")
    parser.add_argument("--players", default="1000,5000", help="player counts, comma-separated (1000,5000)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each player run (30)")
    parser.add_argument("--ramp", type=float, default=500.0, help="players joining per second (500)")
    parser.add_argument("--wrk-duration", type=float, default=8.0, help="seconds per wrk run (8, ≤ 10)")
    parser.add_argument("--repeat", type=int, default=1, help="wrk runs per case, the best counts (1)")
    parser.add_argument("--skip-hls", action="store_true", help="no LL-HLS measures")
    parser.add_argument("--skip-models", action="store_true", help="no model-file measures")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin to cores")
    parser.add_argument(
        "--site", type=Path, default=SHIPPED, help="a candidate site file instead of the shipped one"
    )
    parser.add_argument("--json-out", type=Path, help="write every figure here as JSON")
    parser.add_argument("--keep", type=Path, help="keep configs, logs and saved files in this folder")
    args = parser.parse_args(argv)
    try:
        args.players = [int(n) for n in args.players.split(",")]
    except ValueError:
        parser.error("--players takes numbers separated by commas")
    if not all(1 <= n <= 10_000 for n in args.players) or not 10 <= args.duration <= 120 or args.ramp <= 0:
        parser.error("--players must be 1..10000 each, --duration 10..120, --ramp positive")
    if not 2 <= args.wrk_duration <= 10 or not 1 <= args.repeat <= 3:
        parser.error(
            "--wrk-duration must be 2..10 (the saved parts stay in the origin's window), --repeat 1..3"
        )
    args.node = shutil.which("node") or ""
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    missing += [] if serving.nginx_binary().exists() else ["nginx"]
    missing += [] if args.node or args.skip_hls else ["node (nodejs)"]
    if missing:
        print(f"missing: {', '.join(missing)}; install with: {INSTALL}", file=sys.stderr)
        return 2
    if not args.site.exists():
        print(f"no {args.site}: the front's config is what this measures", file=sys.stderr)
        return 2
    if args.pin and (os.cpu_count() or 1) < 2:
        args.pin = False
    if (seconds := estimate(args)) > MAX_ESTIMATE:
        parser.error(f"that would take about {seconds:.0f} s; at most {MAX_ESTIMATE:g} s")
    print(f"estimated {seconds:.0f} s", file=sys.stderr, flush=True)
    started = time.monotonic()
    results: dict[str, Any] = {}
    # A watchdog: whatever hangs, the run ends by HARD_LIMIT (the context managers stop what they started).
    timer = threading.Timer(HARD_LIMIT, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    try:
        with tempfile.TemporaryDirectory(prefix="forumcast-bench-front-") as scratch:
            workdir = (args.keep or Path(scratch)).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
            if not args.skip_models:
                print("== model files ...", file=sys.stderr, flush=True)
                results["models"] = measure_models(args, workdir)
            if not args.skip_hls:
                results["hls"] = measure_hls(args, workdir)
    finally:
        timer.cancel()
    machine, commit, command = relay.machine_line(), revision(), command_line(args)
    nginx_version = subprocess.run([str(serving.nginx_binary()), "-v"], capture_output=True, text=True).stderr
    node_version = (
        subprocess.run([args.node, "--version"], capture_output=True, text=True).stdout if args.node else ""
    )
    print(
        f"\n{machine}, {nginx_version.strip()}, node {node_version.strip()}; commit {commit};"
        f" site {args.site}; {time.monotonic() - started:.0f} s\n"
    )
    print(summary_table(results) + "\n")
    if "hls" in results:
        print(hls_table(results["hls"]) + "\n")
    if "models" in results:
        print(models_table(results["models"]) + "\n")
    print(f"Command: `{command}`")
    if args.json_out is not None:
        args.json_out.write_text(
            json.dumps(
                {"machine": machine, "commit": commit, "command": command, **serialisable(results)}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
