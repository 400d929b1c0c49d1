"""Relay benchmark: one server, one 1 Mbps test pattern, N WebSocket viewers from another process.

Run on demand (pytest does not collect ``tests/bench``)::

    .venv/bin/python tests/bench/bench_relay.py --viewers 200,1000,2000 --duration 30
    .venv/bin/python tests/bench/bench_relay.py --viewers 2000 --duration 30 --profile   # + py-spy

For every N in ``--viewers`` it starts from scratch (so one run's memory cannot leak into the
next run's figures):

1. ``forumcast serve`` as a subprocess on a free loopback port, with a one-stage event
   (public stage ``main`` fed by input ``main-cam``), ``FORUMCAST_DEMO_INPUTS=false``, a
   fixed ``FORUMCAST_SECRET``, no per-address viewer bound (every simulated viewer comes from
   127.0.0.1) and log level warning;
2. a publisher subprocess: what ``forumcast publish --test-pattern --gop 25`` runs (640x360,
   25 fps, a keyframe every second, 1 Mbps video + 64 kbps AAC, 200 ms fragments, the stream
   key from ``Tokens(secret).stream_key("main-cam")``), plus a tap that logs the moment each
   fragment goes to the socket, keyed by its ``prft`` timestamp (the *sent log*);
3. waits until the server has relayed fragments of the input, then samples the server's
   RSS (``/proc/PID/status`` VmRSS) and CPU (``/proc/PID/stat`` utime+stime) with no viewer;
4. ``forumcast loadtest`` (``python -m clients.loadtest`` until the subcommand is wired) as a
   third process, with N viewers ramping in at ``--ramp`` per second, ``--joins`` probe viewers
   joining at full load, and the sent log, so that it reports the latency the relay *adds*
   (arrival at the viewer − handed to the socket by the publisher);
5. samples server CPU and RSS twice a second while it runs, keeps the steady phase (from
   two seconds after the last viewer joined to the end), and reports: viewers held, added
   latency p50/p99, time to first fragment (ramp, and probe joins at full load), server CPU %
   (of one core) and RSS per viewer = (steady RSS − RSS before) / viewers held, drops (mfhd
   gaps seen by the viewers, and the server's ``forumcast_relay_dropped_total``), the load
   generator's and the publisher's CPU %, and how busy the whole machine was;
6. stops everything (the loadtest ends by itself after ``--duration``; the publisher and the
   server are terminated, then killed if they do not stop).

The table printed at the end is Markdown (for the README's Performance section); ``--json-out
FILE`` keeps every figure. ``--profile`` runs ``py-spy record`` against the server during the
steady phase (``pip install py-spy``; profiling costs the server CPU, so use those runs for
the hot spots, not for the figures) and prints the hot functions.

Everything is bounded: at most 20,000 viewers and 600 s per run, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuv"
STAGE, INPUT = "main", "main-cam"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_EVERY = 0.5
STEADY_AFTER_RAMP = 2.0
MAX_VIEWERS, MAX_DURATION = 20_000, 600.0


def event_yaml(
    title: str = "Relay benchmark",
    inputs: Sequence[tuple[str, str, str]] = ((INPUT, "Test pattern", "encoder"),),
    session: tuple[str, str] = ("2020-01-01T00:00:00+00:00", "2099-01-01T00:00:00+00:00"),
) -> str:
    """A one-stage event: stage ``main`` fed by ``inputs`` (id, title, kind), and one session
    on the first input from ``session[0]`` to ``session[1]``."""
    declared = "".join(f"      - {{id: {key}, title: {name}, kind: {kind}}}\n" for key, name, kind in inputs)
    return f"""\
event:
  id: bench
  title: {{zh: 基准测试, en: {title}}}
  timezone: UTC
venues:
  - {{id: loopback, name: {{zh: 本机, en: Loopback}}, timezone: UTC}}
stages:
  - id: {STAGE}
    title: {{zh: 主论坛, en: Main}}
    kind: main
    venue: loopback
    inputs:
{declared}sessions:
  - id: bench
    stage: {STAGE}
    title: {{zh: 基准, en: Benchmark}}
    start: {session[0]}
    end: {session[1]}
    input: {inputs[0][0]}
"""


EVENT_YAML = event_yaml()


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # Unix time
    ticks: int  # utime + stime, clock ticks
    rss_kib: int


def sample(pid: int) -> Sample | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return Sample(time.time(), ticks, rss)


def machine_ticks() -> tuple[float, int, int]:
    """(time, busy ticks, all ticks) of every CPU, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return time.time(), sum(values) - idle, sum(values)


def tcp_buffer_kib() -> int:
    """Kernel memory in TCP socket buffers, all sockets of the machine (both ends of loopback)."""
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


def cpu_percent(samples: list[Sample]) -> float | None:
    """CPU % of one core between the first and the last sample."""
    if len(samples) < 2 or samples[-1].at <= samples[0].at:
        return None
    return (samples[-1].ticks - samples[0].ticks) / CLK_TCK / (samples[-1].at - samples[0].at) * 100


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout)


def start_server(
    event: Path,
    port: int,
    workdir: Path,
    env: dict[str, str],
    log: IO[str],
    level: str = "warning",
    cpu: int | None = None,
) -> subprocess.Popen[bytes]:
    """``forumcast serve`` of ``event`` on 127.0.0.1:``port`` in a session of its own, logging to
    ``log``; pinned to core ``cpu`` (``taskset``, which execs the server: same pid) if given."""
    pin = [] if cpu is None else ["taskset", "-c", str(cpu)]
    return subprocess.Popen(
        [*pin, sys.executable, "-m", "server", "serve", "--event", str(event), "--host", "127.0.0.1",
         "--port", str(port), "--log-level", level, "--data-dir", str(workdir / "data")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def http_get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body.decode()


def metric(text: str, name: str) -> float:
    """The value of the sample line starting with ``name`` (``name{labels}``), 0 if absent."""
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(what: str, check: Any, timeout: float, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what}: not within {timeout:g} s")


def loadtest_command() -> list[str]:
    """``forumcast loadtest`` when the subcommand is wired, else the module it runs."""
    forumcast = Path(sys.executable).parent / "forumcast"
    if forumcast.exists():
        probe = subprocess.run(
            [str(forumcast), "loadtest", "--help"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return [str(forumcast), "loadtest"]
    return [sys.executable, "-m", "clients.loadtest"]


# --- the publisher (a child process) --------------------------------------------------------------


async def _publish_child(server: str, key: str, sent_log: Path, duration: float) -> int:
    from clients.connection import publish_url
    from clients.loadtest_frames import PREFIX, fragment_marks
    from clients.publisher import publish
    from clients.source import Item, pattern_items
    from server.encoding.testpattern import PatternSettings
    from server.media.types import MediaFragment

    settings = PatternSettings(label="BENCH", fps=25, gop=25, fragment_ms=200, bitrate=1_000_000, audio="aac")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    with sent_log.open("a", buffering=1) as log:

        async def tapped() -> AsyncIterator[Item]:
            async for item in pattern_items(settings):
                if isinstance(item, MediaFragment):
                    # The publisher's sender writes it to the socket in the loop's next turn.
                    log.write(f"{fragment_marks(item.data[:PREFIX])[0]} {time.time():.6f}\n")
                yield item

        urls = [publish_url(one, INPUT) for one in server.split(",")]  # several: a cluster's instances
        report = await publish(urls, key, tapped(), duration=duration, stop=stopping)
    print(f"publisher: {report.outbox}; {report.ended}", flush=True)
    return 0


# --- one run --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Options:
    duration: float
    ramp: float
    joins: int
    profile: bool
    keep: Path | None


def run_once(viewers: int, options: Options, workdir: Path) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    event = workdir / "event.yaml"
    event.write_text(EVENT_YAML)
    sent_log = workdir / f"sent-{viewers}.log"
    sent_log.unlink(missing_ok=True)
    env = {
        **os.environ,
        "FORUMCAST_SECRET": SECRET,
        "FORUMCAST_DEMO_INPUTS": "false",
        # Every simulated viewer comes from 127.0.0.1: lift the per-address bound.
        "FORUMCAST_MAX_VIEWERS_PER_IP": "100000",
    }
    env.pop("PYTHONASYNCIODEBUG", None)  # debug mode would slow every process down
    from server.auth import Tokens

    key = Tokens(SECRET).stream_key(INPUT)
    server = publisher = loadtest = profiler = None
    logs = {
        name: (workdir / f"{name}-{viewers}.log").open("w") for name in ("server", "publisher", "loadtest")
    }
    try:
        server = start_server(event, port, workdir, env, logs["server"])
        wait_for("server health", lambda: http_get(f"{base}/healthz") is not None, 30, server)
        publisher = subprocess.Popen(
            [sys.executable, __file__, "_publish", base, key, str(sent_log),
             str(options.duration + 60)],
            cwd=ROOT, env=env, stdout=logs["publisher"], stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        fragments = f'forumcast_relay_fragments_total{{input="{INPUT}"}}'
        wait_for(
            "media on the stage", lambda: metric(http_get(f"{base}/metrics"), fragments) >= 10, 30, server
        )
        before: list[Sample] = []
        for _ in range(7):  # 3 s with no viewer
            if (s := sample(server.pid)) is not None:
                before.append(s)
            time.sleep(SAMPLE_EVERY)
        dropped_metric = f'forumcast_relay_dropped_total{{stage="{STAGE}"}}'
        dropped_before = metric(http_get(f"{base}/metrics"), dropped_metric)

        command = [
            *loadtest_command(), "--server", base, "--stage", STAGE, "--viewers", str(viewers),
            "--ramp-per-second", str(options.ramp), "--duration", str(options.duration),
            "--joins", str(options.joins), "--sent-log", str(sent_log), "--json",
        ]  # fmt: skip
        out = workdir / f"loadtest-{viewers}.json"
        with out.open("w") as stdout:
            loadtest = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=stdout, stderr=logs["loadtest"], start_new_session=True
            )
            started = time.time()
            server_samples: list[Sample] = []
            publisher_samples: list[Sample] = []
            machine: list[tuple[float, int, int]] = []
            tcp: list[tuple[float, int]] = []
            limit = time.monotonic() + options.duration + 60
            ramp_s = viewers / options.ramp
            if options.profile:
                profiler = start_profiler(server.pid, workdir, viewers, ramp_s, options)
            while loadtest.poll() is None:
                if time.monotonic() > limit:
                    raise RuntimeError("the loadtest did not stop in time")
                if (s := sample(server.pid)) is not None:
                    server_samples.append(s)
                if (s := sample(publisher.pid)) is not None:
                    publisher_samples.append(s)
                machine.append(machine_ticks())
                tcp.append((time.time(), tcp_buffer_kib()))
                time.sleep(SAMPLE_EVERY)
        report = json.loads(out.read_text())
        time.sleep(2.0)
        after = sample(server.pid)
        dropped = metric(http_get(f"{base}/metrics"), dropped_metric) - dropped_before
        profile = finish_profiler(profiler)
        ramp_done = report["ramp_done_s"]
        steady_from = started + (ramp_done if ramp_done is not None else options.duration) + STEADY_AFTER_RAMP
        steady_to = report["started"] + options.duration - 0.25

        def steady(samples: list[Sample]) -> list[Sample]:
            return [s for s in samples if steady_from <= s.at <= steady_to]

        busy = [m for m in machine if steady_from <= m[0] <= steady_to]
        machine_busy = (
            (busy[-1][1] - busy[0][1]) / (busy[-1][2] - busy[0][2]) * 100
            if len(busy) >= 2 and busy[-1][2] > busy[0][2]
            else None
        )
        tcp_steady = [kib for at, kib in tcp if steady_from <= at <= steady_to]
        rss_before = statistics.median(s.rss_kib for s in before)
        rss_steady = statistics.median(s.rss_kib for s in steady(server_samples) or server_samples[-1:])
        held = report["held"]
        return {
            "viewers": viewers,
            "held": held,
            "added_p50_ms": (report["added_latency_ms"] or {}).get("p50"),
            "added_p99_ms": (report["added_latency_ms"] or {}).get("p99"),
            "added_max_ms": (report["added_latency_ms"] or {}).get("max"),
            "latency_p50_ms": report["latency_ms"]["p50"],
            "latency_p99_ms": report["latency_ms"]["p99"],
            "ttff_p50_ms": report["ttff_ms"]["p50"],
            "ttff_p99_ms": report["ttff_ms"]["p99"],
            "join_ttff_p50_ms": report["join_ttff_ms"]["p50"],
            "join_ttff_p99_ms": report["join_ttff_ms"]["p99"],
            "server_cpu_idle_pct": _round(cpu_percent(before)),
            "server_cpu_pct": _round(cpu_percent(steady(server_samples))),
            "server_rss_before_kib": rss_before,
            "server_rss_steady_kib": rss_steady,
            "server_rss_after_kib": after.rss_kib if after else None,
            "rss_per_viewer_kib": _round((rss_steady - rss_before) / held) if held else None,
            "kernel_tcp_buffers_kib": statistics.median(tcp_steady) if tcp_steady else None,
            "drops": report["drops"],
            "server_dropped": dropped,
            "loadgen_cpu_pct": report["cpu_percent"],
            "publisher_cpu_pct": _round(cpu_percent(steady(publisher_samples))),
            "machine_busy_pct": _round(machine_busy),
            "steady_s": _round(steady_to - steady_from),
            "profile": profile,
            "loadtest": report,
        }
    finally:
        stop(profiler.proc if profiler else None, 30)
        stop(loadtest)
        stop(publisher)
        stop(server, 15)
        for log in logs.values():
            log.close()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- profiling ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Profiler:
    proc: subprocess.Popen[bytes]
    output: Path


def start_profiler(pid: int, workdir: Path, viewers: int, ramp_s: float, options: Options) -> Profiler | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed (pip install py-spy): no profile", file=sys.stderr)
        return None
    delay = ramp_s + STEADY_AFTER_RAMP + 1
    seconds = max(1, int(options.duration - delay - 1))
    output = workdir / f"profile-{viewers}.txt"
    script = (
        f"sleep {delay:.1f}; exec {spy} record --pid {pid} --duration {seconds} --rate 200"
        f" --nonblocking --format raw --output {output}"
    )
    proc = subprocess.Popen(
        ["sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    return Profiler(proc, output)


def finish_profiler(profiler: Profiler | None) -> dict[str, Any] | None:
    if profiler is None:
        return None
    with contextlib.suppress(subprocess.TimeoutExpired):
        profiler.proc.wait(60)
    if not profiler.output.exists():
        return None
    return summarise_profile(profiler.output)


def summarise_profile(path: Path, top: int = 20) -> dict[str, Any]:
    """Self and inclusive sample shares per function, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [frame.split(" (", 1)[0] + _where(frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n

    def share(count: int) -> float:
        return round(count / total * 100, 1) if total else 0.0

    return {
        "samples": total,
        "self": [(name, share(c)) for name, c in own.most_common(top)],
        "inclusive": [(name, share(c)) for name, c in inclusive.most_common(top)],
        "file": str(path),
    }


def _where(frame: str) -> str:
    """`` (file.py)`` of a py-spy frame ``name (path/file.py:line)``."""
    if " (" not in frame:
        return ""
    location = frame.split(" (", 1)[1].rstrip(")")
    return f" ({'/'.join(location.split(':')[0].split('/')[-2:])})"


# --- output ---------------------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    def pair(a: Any, b: Any) -> str:
        return f"{cell(a)} / {cell(b)}"

    rows = [
        "| viewers | held | added latency p50 / p99 ms | TTFF ramp p50 / p99 ms | TTFF new viewer"
        " p50 / p99 ms | server CPU % | server RSS / viewer KiB | drops (viewers / server) |"
        " load generator CPU % | publisher CPU % | machine busy % |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r['viewers']} | {r['held']} | {pair(r['added_p50_ms'], r['added_p99_ms'])}"
            f" | {pair(r['ttff_p50_ms'], r['ttff_p99_ms'])}"
            f" | {pair(r['join_ttff_p50_ms'], r['join_ttff_p99_ms'])}"
            f" | {cell(r['server_cpu_pct'])} | {cell(r['rss_per_viewer_kib'])}"
            f" | {r['drops']} / {cell(r['server_dropped'])} | {cell(r['loadgen_cpu_pct'])}"
            f" | {cell(r['publisher_cpu_pct'])} | {cell(r['machine_busy_pct'])} |"
        )
    return "\n".join(rows)


def _viewer_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or not all(1 <= n <= MAX_VIEWERS for n in counts):
        raise argparse.ArgumentTypeError(f"viewer counts must be 1..{MAX_VIEWERS}")
    return counts


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_publish"]:  # the publisher child: _publish SERVER KEY SENT_LOG DURATION
        server, key, log, duration = argv[1:5]
        return asyncio.run(_publish_child(server, key, Path(log), float(duration)))
    parser = argparse.ArgumentParser(description="relay benchmark (see the module docstring)")
    parser.add_argument("--viewers", type=_viewer_counts, default=[200, 2000], help="e.g. 200,1000,2000")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per run (30)")
    parser.add_argument("--ramp", type=float, default=500.0, help="new viewers per second (500)")
    parser.add_argument("--joins", type=int, default=50, help="probe viewers joining at full load (50)")
    parser.add_argument("--profile", action="store_true", help="py-spy the server in the steady phase")
    parser.add_argument("--json-out", type=Path, help="write every figure here as JSON")
    parser.add_argument("--keep", type=Path, help="keep logs, sent logs and profiles in this folder")
    args = parser.parse_args(argv)
    if not 5 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be 5..{MAX_DURATION:g}")
    options = Options(args.duration, args.ramp, args.joins, args.profile, args.keep)
    results = []
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = args.keep
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="forumcast-bench-")))
        for viewers in args.viewers:
            print(f"== {viewers} viewers, {args.duration:g} s ...", file=sys.stderr, flush=True)
            result = run_once(viewers, options, workdir)
            results.append(result)
            print(_summary(result), file=sys.stderr, flush=True)
    print(f"\n{machine_line()}\n")
    print(table(results))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps({"machine": machine_line(), "results": results}, indent=2))
    return 0


def _summary(result: dict[str, Any]) -> str:
    lines = [
        f"   held {result['held']}/{result['viewers']}, added latency p50 {result['added_p50_ms']}"
        f" p99 {result['added_p99_ms']} max {result['added_max_ms']} ms, TTFF new viewer p99"
        f" {result['join_ttff_p99_ms']} ms, server CPU {result['server_cpu_pct']} %, RSS/viewer"
        f" {result['rss_per_viewer_kib']} KiB, drops {result['drops']}, load generator CPU"
        f" {result['loadgen_cpu_pct']} %, machine busy {result['machine_busy_pct']} %",
    ]
    profile = result.get("profile")
    if profile:
        lines.append(f"   profile ({profile['samples']} samples, {profile['file']}), self %:")
        lines += [f"     {share:5.1f}  {name}" for name, share in profile["self"]]
        lines.append("   inclusive %:")
        lines += [f"     {share:5.1f}  {name}" for name, share in profile["inclusive"]]
    return "\n".join(lines)


def machine_line() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}"


if __name__ == "__main__":
    sys.exit(main())
