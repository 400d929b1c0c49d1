"""Model-serving benchmark: ``GET /models/{sha}.glb`` from forumcast against nginx serving the same files.

Run on demand from the repository root (pytest does not collect ``tests/bench``)::

    apt-get install -y nginx wrk        # once; the script prints this if either is missing
    .venv/bin/python tests/bench/bench_serving.py [--duration 10] [--connections 64] [--repeat 1]
    .venv/bin/python tests/bench/bench_serving.py --access-log   # + forumcast at log level info

What it does, all on loopback, and stopping everything it started (process groups) at the end:

1. a data dir with three GLBs of the sizes of a model's levels of detail (about 40 KB, 400 KB
   and 4 MB: valid GLB 2.0 files whose binary chunk is incompressible random bytes, like
   texture data), stored with :meth:`ModelStore.put` exactly where the server looks for them;
2. ``forumcast serve`` (demo inputs and demo models off, log level warning) and nginx
   (``nginx -c CONF -p PREFIX -g 'daemon off;'`` with a config written here: sendfile on, etag
   on, the same ``Content-Type`` and ``Cache-Control``, no access log, open_file_cache, high
   keepalive_requests) on free ports; nginx once with ``worker_processes 1`` and once with
   ``auto`` (one worker per core);
3. the same ``wrk -t1 -cN -dS --latency`` against each, for every file size, plus a
   conditional request (``If-None-Match`` with the server's own ETag → 304) and a range
   request (the first 64 KiB of the 4 MB file → 206); every response is checked once first
   (status, length, body hash, headers); with ``--repeat N`` each case runs N times and the
   best run counts (other work on a shared machine only ever makes a run slower);
4. prints a Markdown table: requests/s and MiB/s per server, and forumcast's share of nginx's
   requests/s (the target is ≥ 0.5 of nginx with one worker).

Fairness on a small machine: forumcast is one process (one core), so the primary comparison
is nginx with one worker, and both are pinned to core 0 with wrk pinned to core 1
(``--no-pin`` lets the scheduler place them). nginx ``auto`` gets every core and is not
pinned, so it shares them with wrk, which needs a core of its own to keep up: on a 2-core
machine that column says what the load generator allows more than what nginx can do.
``--access-log`` adds a forumcast run at log level info (one access-log line per request,
written to a file) to show what per-request logging costs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from exhibits.modelstore import ModelStore  # noqa: E402
from exhibits.serving import GLB_TYPE, IMMUTABLE  # noqa: E402

SIZES = {"40 KB": 40_000, "400 KB": 400_000, "4 MB": 4_000_000}
RANGE_BYTES = 65_536
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_DURATION = 300.0
INSTALL = "apt-get install -y nginx wrk"


# --- the files --------------------------------------------------------------------------------------


def glb_file(size: int, seed: int) -> bytes:
    """A valid GLB 2.0 of about ``size`` bytes: one buffer of random (incompressible) bytes."""
    payload = random.Random(seed).randbytes(max(0, size - 200) // 4 * 4)
    gltf = {
        "asset": {"version": "2.0", "generator": "forumcast bench_serving"},
        "buffers": [{"byteLength": len(payload)}],
    }
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(payload)
    return b"".join(
        [
            struct.pack("<4sII", b"glTF", 2, total),
            struct.pack("<I4s", len(text), b"JSON"),
            text,
            struct.pack("<I4s", len(payload), b"BIN\x00"),
            payload,
        ]
    )


def prepare(data_dir: Path) -> dict[str, tuple[str, bytes]]:
    """Store one GLB per size; label → (sha256, bytes)."""
    store = ModelStore(data_dir)
    out = {}
    for seed, (label, size) in enumerate(SIZES.items()):
        data = glb_file(size, seed)
        sha, _ = store.put(data)
        out[label] = (sha, data)
    return out


# --- processes --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_group(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM the process group ``proc`` leads, then SIGKILL it if it does not go."""
    if proc is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            continue
        # Workers may outlive the leader by a moment.
        deadline = time.monotonic() + timeout
        while group_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not group_pids(proc.pid):
            return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def group_ticks(pgid: int) -> int:
    """utime + stime of every live process of the group (all threads included)."""
    ticks = 0
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks


def pinned(command: list[str], cpu: int | None) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> Fetched:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Fetched(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:  # 304 and friends
        return Fetched(exc.code, dict(exc.headers), exc.read())


def wait_until_up(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before answering")
        with contextlib.suppress(OSError):
            fetch(url, timeout=1.0)
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer within {timeout:g} s")


@dataclass(slots=True)
class Server:
    name: str
    base: str
    proc: subprocess.Popen[bytes]
    pinned: bool


@contextlib.contextmanager
def forumcast(workdir: Path, data_dir: Path, *, log_level: str, cpu: int | None) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "FORUMCAST_DEMO_INPUTS": "false",
        "FORUMCAST_DEMO_MODELS": "false",
        "FORUMCAST_DATA_DIR": str(data_dir),
    }
    env.pop("PYTHONASYNCIODEBUG", None)  # debug mode would slow the server down
    log = (workdir / f"forumcast-{log_level}.log").open("wb")
    command = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", log_level]  # fmt: skip
    proc = None
    try:
        proc = subprocess.Popen(
            pinned(command, cpu), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/healthz", proc, "forumcast")
        yield Server(f"forumcast ({log_level})", base, proc, cpu is not None)
    finally:
        stop_group(proc)
        log.close()


NGINX_CONF = """\
{user}worker_processes {workers};
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ model/gltf-binary glb; }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    etag on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    open_file_cache max=1000 inactive=60s;
    server {{
        listen 127.0.0.1:{port};
        location /models/ {{
            root {models};
            rewrite "^/models/([0-9a-f]{{2}})([0-9a-f]{{62}})\\.glb$" /$1/$1$2.glb break;
            add_header Cache-Control "{cache_control}" always;
        }}
        location = /healthz {{ return 200 "ok"; }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(workdir: Path, data_dir: Path, *, workers: str, cpu: int | None) -> Iterator[Server]:
    port = free_port()
    prefix = workdir / f"nginx-{workers}"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            # Run as root, nginx would switch its workers to nobody, who cannot read a 0700 temp dir.
            user="user root;\n" if os.geteuid() == 0 else "",
            workers=workers,
            prefix=prefix,
            port=port,
            models=data_dir / "models",
            cache_control=IMMUTABLE,
        )
    )
    log = (prefix / "stderr.log").open("wb")
    command = [str(nginx_binary()), "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"]
    proc = None
    try:
        proc = subprocess.Popen(
            pinned(command, cpu), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/healthz", proc, "nginx")
        yield Server(f"nginx ({workers} worker{'s' if workers != '1' else ''})", base, proc, cpu is not None)
    finally:
        stop_group(proc)
        log.close()


def nginx_binary() -> Path:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return Path(found)


# --- the load ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    path: str
    headers: dict[str, str]  # placeholders: {etag}
    status: int
    body: bytes


_T = TypeVar("_T")


@dataclass(slots=True)
class WrkLoad:
    """What one wrk run measured: its figures, the server's CPU and wrk's own."""

    requests_s: float
    bytes_s: float
    p50_ms: float | None
    p99_ms: float | None
    errors: str
    server_cpu_pct: float
    wrk_cpu_pct: float


@dataclass(slots=True)
class Result(WrkLoad):
    notes: list[str] = field(default_factory=list)


_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
_TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(text: str) -> tuple[float, float, float | None, float | None, str]:
    """requests/s, bytes/s, p50 ms, p99 ms and an error summary from wrk's output."""
    requests = re.search(r"Requests/sec:\s+([\d.]+)", text)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", text)
    if requests is None or transfer is None:
        raise RuntimeError(f"unexpected wrk output:\n{text}")

    def percentile(p: str) -> float | None:
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
        return float(match.group(1)) * _TIME_UNITS[match.group(2)] if match else None

    errors = []
    if match := re.search(r"Socket errors: (.*)", text):
        errors.append(match.group(1).strip())
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors.append(f"{match.group(1)} non-2xx/3xx")
    return (
        float(requests.group(1)),
        float(transfer.group(1)) * _UNITS[transfer.group(2)],
        percentile("50"),
        percentile("99"),
        "; ".join(errors),
    )


def check(server: Server, case: Case, headers: dict[str, str]) -> None:
    """One request of the case, checked, before any load (also warms the server's cache)."""
    got = fetch(server.base + case.path, headers)
    problems = []
    if got.status != case.status:
        problems.append(f"status {got.status} != {case.status}")
    if got.body != case.body:
        problems.append(f"body of {len(got.body)} bytes, sha {hashlib.sha256(got.body).hexdigest()[:12]}")
    if case.status != 304:
        if got.headers.get("Content-Type") != GLB_TYPE:
            problems.append(f"Content-Type {got.headers.get('Content-Type')}")
        if got.headers.get("Cache-Control") != IMMUTABLE:
            problems.append(f"Cache-Control {got.headers.get('Cache-Control')}")
    if problems:
        raise RuntimeError(f"{server.name} {case.label}: " + ", ".join(problems))


def run_wrk(server: Server, case: Case, options: Options) -> Result:
    etag = fetch(server.base + case.path.split("?")[0]).headers.get("ETag", "")
    headers = {name: value.format(etag=etag) for name, value in case.headers.items()}
    check(server, case, headers)
    command = ["wrk", "-t1", f"-c{options.connections}", f"-d{options.duration:g}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(server.base + case.path)
    load, _, _ = measure_wrk(
        pinned(command, 1 if server.pinned else None), server.proc.pid, options.duration + 30, lambda: None
    )
    return Result(**dataclasses.asdict(load))


def measure_wrk(
    argv: list[str], pgid: int, timeout: float, sample: Callable[[], _T]
) -> tuple[WrkLoad, _T, _T]:
    """Run wrk (``argv``, maybe behind ``taskset``) to its end: its figures, the CPU of the
    server (process group ``pgid``) and of wrk meanwhile, and ``sample()`` taken before and
    after, next to the server's CPU ticks."""
    before_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_ticks = group_ticks(pgid)
    before = sample()
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        stop_group(proc)
    elapsed = time.monotonic() - started
    after_ticks = group_ticks(pgid)
    after = sample()
    after_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}:\n{out.decode(errors='replace')}")
    requests_s, bytes_s, p50, p99, errors = parse_wrk(out.decode())
    wrk_cpu = (after_usage.ru_utime + after_usage.ru_stime) - (before_usage.ru_utime + before_usage.ru_stime)
    load = WrkLoad(
        requests_s=requests_s,
        bytes_s=bytes_s,
        p50_ms=p50,
        p99_ms=p99,
        errors=errors,
        server_cpu_pct=(after_ticks - before_ticks) / CLK_TCK / elapsed * 100,
        wrk_cpu_pct=wrk_cpu / elapsed * 100,
    )
    return load, before, after


def cases(files: dict[str, tuple[str, bytes]]) -> list[Case]:
    out = [Case(label, f"/models/{sha}.glb", {}, 200, data) for label, (sha, data) in files.items()]
    small_sha, _ = files["40 KB"]
    big_sha, big = files["4 MB"]
    out.append(Case("304 (If-None-Match)", f"/models/{small_sha}.glb", {"If-None-Match": "{etag}"}, 304, b""))
    out.append(
        Case(
            "4 MB, Range 64 KiB",
            f"/models/{big_sha}.glb",
            {"Range": f"bytes=0-{RANGE_BYTES - 1}"},
            206,
            big[:RANGE_BYTES],
        )
    )
    return out


# --- the run ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Options:
    duration: float
    connections: int
    pin: bool
    access_log: bool
    repeat: int


def run(options: Options, workdir: Path) -> tuple[list[Case], dict[str, dict[str, Result]]]:
    data_dir = workdir / "data"
    files = prepare(data_dir)
    todo = cases(files)
    core = 0 if options.pin else None
    servers: list[tuple[str, contextlib.AbstractContextManager[Server]]] = [
        ("forumcast", forumcast(workdir, data_dir, log_level="warning", cpu=core)),
        ("nginx1", nginx(workdir, data_dir, workers="1", cpu=core)),
        ("nginx_auto", nginx(workdir, data_dir, workers="auto", cpu=None)),
    ]
    if options.access_log:
        servers.append(("forumcast_info", forumcast(workdir, data_dir, log_level="info", cpu=core)))
    results: dict[str, dict[str, Result]] = {}
    for key, starting in servers:
        with starting as server:
            results[key] = {}
            for case in todo:
                print(
                    f"== {server.name}: {case.label}, {options.duration:g} s ...", file=sys.stderr, flush=True
                )
                runs = [run_wrk(server, case, options) for _ in range(options.repeat)]
                result = max(runs, key=lambda r: r.requests_s)
                results[key][case.label] = result
                if options.repeat > 1:
                    print(
                        f"   runs: {', '.join(f'{r.requests_s:,.0f}' for r in runs)} req/s", file=sys.stderr
                    )
                print(
                    f"   {result.requests_s:,.0f} req/s, {result.bytes_s / 2**20:,.1f} MiB/s, p50"
                    f" {result.p50_ms} ms, p99 {result.p99_ms} ms, server CPU {result.server_cpu_pct:.0f} %,"
                    f" wrk CPU {result.wrk_cpu_pct:.0f} %{', ' + result.errors if result.errors else ''}",
                    file=sys.stderr,
                    flush=True,
                )
    return todo, results


def table(todo: list[Case], results: dict[str, dict[str, Result]]) -> str:
    def rate(r: Result) -> str:
        return f"{r.requests_s:,.0f} / {r.bytes_s / 2**20:,.1f}"

    def cpu(r: Result) -> str:
        return f"{r.server_cpu_pct:.0f} / {r.wrk_cpu_pct:.0f}"

    head = (
        "| case | forumcast req/s / MiB/s | CPU % srv / wrk | nginx 1 worker req/s / MiB/s | CPU % srv / wrk"
        " | **ratio vs nginx 1** | nginx auto req/s / MiB/s | CPU % srv / wrk | ratio vs nginx auto |"
    )
    rows = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for case in todo:
        fc, n1, na = (results[k][case.label] for k in ("forumcast", "nginx1", "nginx_auto"))
        rows.append(
            f"| {case.label} | {rate(fc)} | {cpu(fc)} | {rate(n1)} | {cpu(n1)}"
            f" | **{fc.requests_s / n1.requests_s:.2f}** | {rate(na)} | {cpu(na)}"
            f" | {fc.requests_s / na.requests_s:.2f} |"
        )
    if "forumcast_info" in results:
        rows += [
            "",
            "| case | forumcast, log level warning req/s | log level info (access log) req/s | cost |",
            "|---|---:|---:|---:|",
        ]
        for case in todo:
            quiet, loud = results["forumcast"][case.label], results["forumcast_info"][case.label]
            rows.append(
                f"| {case.label} | {quiet.requests_s:,.0f} | {loud.requests_s:,.0f}"
                f" | {(1 - loud.requests_s / quiet.requests_s) * 100:.0f} % |"
            )
    errors = [
        f"{key} {label}: {r.errors}" for key, by in results.items() for label, r in by.items() if r.errors
    ]
    if errors:
        rows += ["", "wrk reported errors: " + "; ".join(errors)]
    return "\n".join(rows)


def machine_notes(options: Options) -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    version = subprocess.run([str(nginx_binary()), "-v"], capture_output=True, text=True, check=False)
    where = (
        "forumcast and nginx 1 worker pinned to core 0, wrk to core 1; nginx auto and its wrk unpinned"
        if options.pin
        else "nothing pinned"
    )
    return (
        f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]},"
        f" {version.stderr.strip()}, wrk -t1 -c{options.connections} -d{options.duration:g}s"
        f"{f' best of {options.repeat}' if options.repeat > 1 else ''}, loopback,"
        f" {time.strftime('%Y-%m-%d')}.\n{where}. wrk needs a core itself: with 2 cores, nginx auto"
        " competes with it, so its column is bounded by the load generator. CPU % is of one core"
        " (server process group / wrk). MiB/s counts headers and bodies (wrk's Transfer/sec)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="model-serving benchmark (see the module docstring)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per case (10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin to cores")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case, the best counts (1)")
    parser.add_argument("--access-log", action="store_true", help="also run forumcast at log level info")
    parser.add_argument("--keep", type=Path, help="keep the data dir, configs and logs in this folder")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be 1..{MAX_DURATION:g}")
    if not 1 <= args.connections <= 10_000:
        parser.error("--connections must be 1..10000")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be 1..10")
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if not nginx_binary().exists():
        missing.append("nginx")
    if missing:
        print(f"missing: {', '.join(missing)}; install with: {INSTALL}", file=sys.stderr)
        return 2
    if args.pin and (os.cpu_count() or 1) < 2:
        args.pin = False
    options = Options(args.duration, args.connections, args.pin, args.access_log, args.repeat)
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = args.keep.resolve()
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="forumcast-serving-")))
        todo, results = run(options, workdir)
    print(f"\n{machine_notes(options)}\n")
    print(table(todo, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
