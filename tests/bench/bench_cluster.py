"""Cluster benchmark: what sharing one event through Redis costs and buys (issue 13).

Run on demand (pytest does not collect ``tests/bench``); each part starts its own processes
on loopback and stops them::

    .venv/bin/python tests/bench/bench_cluster.py latency --viewers 50 --duration 20
    .venv/bin/python tests/bench/bench_cluster.py failover --kills 20
    .venv/bin/python tests/bench/bench_cluster.py redis --instances 1,2,3 --duration 20
    .venv/bin/python tests/bench/bench_cluster.py workers --viewers 2000,4000 --duration 30

- **latency**: the added latency (viewer arrival − the moment the publisher handed the
  fragment to its socket) of one process without Redis, then of three instances on one
  redis-server with the publisher on A and the viewers on B: the Redis path is publisher →
  A → ``in:main-cam`` → the stage's leader → ``prog:main`` → B → viewer. Same publisher
  (1 Mbps test pattern, 200 ms fragments), same ``forumcast loadtest``, side by side.
- **failover**: three instances, the publisher on one of them with every URL, one viewer on
  each instance. ``--kills`` times: ``kill -9`` the stage's leader, measure on a surviving
  viewer the freeze (the longest gap between fragments after the kill) and how long until
  another instance holds the lease, then restart the killed one and let the cluster settle.
  Kills of a leader that also had the publisher (it must reconnect elsewhere first) are
  reported apart.
- **redis**: redis-server's CPU (``INFO cpu``) and network (``INFO stats``
  ``total_net_input_bytes`` / ``total_net_output_bytes``) per second with one 1 Mbps stage,
  one viewer per instance, for 1, 2, 3 … instances.
- **workers**: WebSocket viewers at p99 added latency, ``--workers 1`` against
  ``--workers 2`` (embedded Redis), the load generator on the same machine.

Everything is bounded (at most 20,000 viewers, 600 s a run) and targets loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_relay as relay  # the relay benchmark's processes and helpers

from server.auth import Tokens
from tests.support.redis_server import RedisServer

ROOT = relay.ROOT
SECRET = relay.SECRET
KEY = Tokens(SECRET).stream_key(relay.INPUT)


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "FORUMCAST_SECRET": SECRET, "FORUMCAST_DEMO_INPUTS": "false",
           "FORUMCAST_DEMO_MODELS": "false", "FORUMCAST_MAX_VIEWERS_PER_IP": "100000",
           "FORUMCAST_LOG_LEVEL": "warning", **extra}  # fmt: skip
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


class Node:
    """One ``forumcast serve`` (optionally on a Redis, optionally with workers)."""

    def __init__(
        self, name: str, workdir: Path, event: Path, *, redis_url: str = "", workers: int = 1
    ) -> None:
        self.name, self.port = name, relay.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir, self.event, self.redis_url, self.workers = workdir, event, redis_url, workers
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [sys.executable, "-m", "server", "serve", "--event", str(self.event), "--host", "127.0.0.1",
                "--port", str(self.port), "--data-dir", str(self.workdir / f"data-{self.name}"),
                "--workers", str(self.workers)]  # fmt: skip
        if self.redis_url:
            args += ["--redis-url", self.redis_url]
        log = (self.workdir / f"{self.name}.log").open("a")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=environment(FORUMCAST_INSTANCE_ID=self.name), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        relay.wait_for(f"{self.name} health", lambda: relay.http_get(f"{self.url}/healthz"), 30, self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        relay.stop(self.proc, timeout=15)

    def cluster(self) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/api/v1/cluster",
            headers={"Authorization": f"Bearer {Tokens(SECRET).issue('ops', ttl=_HOUR)}"},
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body


_HOUR = __import__("datetime").timedelta(hours=1)


def leader(nodes: list[Node]) -> tuple[str, int] | None:
    for node in nodes:
        if node.proc is None or node.proc.poll() is not None:
            continue
        with contextlib.suppress(OSError, ValueError):
            for stage in node.cluster()["stages"]:
                if stage["id"] == relay.STAGE and stage["leader"]:
                    return stage["leader"]["instance"], stage["leader"]["epoch"]
    return None


def publisher(servers: list[str], workdir: Path, sent_log: Path, seconds: float) -> subprocess.Popen[bytes]:
    """The relay benchmark's tapped 1 Mbps publisher (to the first server of the list)."""
    log = (workdir / "publisher.log").open("a")
    return subprocess.Popen(
        [sys.executable, relay.__file__, "_publish", ",".join(servers), KEY, str(sent_log), str(seconds)],
        cwd=ROOT, env=environment(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def loadtest(server: str, viewers: int, seconds: float, sent_log: Path, workdir: Path) -> dict[str, Any]:
    command = [*relay.loadtest_command(), "--server", server, "--stage", relay.STAGE,
               "--viewers", str(viewers), "--ramp-per-second", "500", "--duration", str(seconds),
               "--joins", "10", "--sent-log", str(sent_log), "--json"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=environment(), capture_output=True, text=True,
                            timeout=seconds + 120, check=True)  # fmt: skip
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def media_flowing(node: Node) -> bool:
    text = relay.http_get(f"{node.url}/metrics")
    return any(line.startswith("forumcast_viewers") for line in text.splitlines())


# --- latency ------------------------------------------------------------------------------------


def bench_latency(viewers: int, seconds: float, workdir: Path) -> dict[str, Any]:
    event = workdir / "event.yaml"
    event.write_text(relay.EVENT_YAML)
    out: dict[str, Any] = {}
    for mode in ("single", "cluster"):
        sent = workdir / f"sent-{mode}.log"
        redis = RedisServer(workdir / f"redis-{mode}") if mode == "cluster" else None
        nodes: list[Node] = []
        pub = None
        try:
            if redis is not None:
                redis.start()
                nodes = [Node(n, workdir, event, redis_url=redis.url) for n in ("a", "b", "c")]
            else:
                nodes = [Node("single", workdir, event)]
            for node in nodes:
                node.start()
            pub = publisher([nodes[0].url], workdir, sent, seconds + 90)
            time.sleep(8)  # leases taken, the publisher's first GOPs through
            watched = nodes[1] if len(nodes) > 1 else nodes[0]
            report = loadtest(watched.url, viewers, seconds, sent, workdir)
            out[mode] = {
                "viewers_held": report["held"],
                "added_p50_ms": report["added_latency_ms"]["p50"],
                "added_p99_ms": report["added_latency_ms"]["p99"],
                "drops": report["drops"],
                "leader": leader(nodes) if redis is not None else None,
            }
            print(f"latency {mode}: {out[mode]}", file=sys.stderr, flush=True)
        finally:
            relay.stop(pub)
            for node in nodes:
                node.stop()
            if redis is not None:
                redis.stop()
    return out


# --- failover -----------------------------------------------------------------------------------


async def _watch(
    url: str, arrivals: list[float], stop: asyncio.Event, heads: list[bytes] | None = None
) -> None:
    """A viewer: the arrival time of every media message (and its first bytes, if asked)."""
    from websockets.asyncio.client import connect

    while not stop.is_set():
        with contextlib.suppress(OSError, Exception):
            async with connect(url, max_size=None) as ws:
                while not stop.is_set():
                    message = await asyncio.wait_for(ws.recv(), 1.0)
                    if isinstance(message, bytes):
                        arrivals.append(time.monotonic())
                        if heads is not None:
                            heads.append(message[:HEAD])
        await asyncio.sleep(0.2)


#: Bytes of a fragment's start (its moof: sequence number and decode times) that identify it.
HEAD = 160


def _heads_of_term(redis: RedisServer, epoch: int) -> set[bytes]:
    """The starts of every program fragment written in term ``epoch`` or later."""
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url)
    try:
        key = next(iter(client.scan_iter(match=f"forumcast:*:prog:{relay.STAGE}")))
        return {
            bytes(fields[b"d"][:HEAD])
            for _, fields in client.xrange(key, count=5000)
            if fields[b"t"] == b"frag" and int(fields[b"e"]) >= epoch
        }
    finally:
        client.close()


def _ws(node: Node) -> str:
    return f"ws://127.0.0.1:{node.port}/ws/watch/{relay.STAGE}"


async def _kill_watched(
    victim: Node,
    survivors: list[Node],
    held: tuple[str, int],
    arrivals: dict[str, list[float]],
    heads: dict[str, list[bytes]],
) -> tuple[float, float | None]:
    """Watch on the survivors, ``kill -9`` the leader 3 s in, see when a newer term leads."""
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(_watch(_ws(n), arrivals[n.name], stop, heads[n.name])) for n in survivors]
    await asyncio.sleep(3)
    killed = time.monotonic()
    await asyncio.to_thread(victim.kill)
    taken = None
    while time.monotonic() - killed < 10:
        now_leader = await asyncio.to_thread(leader, survivors)
        if now_leader is not None and now_leader[1] > held[1]:
            taken = time.monotonic() - killed
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(5)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return killed, taken


def bench_failover(kills: int, workdir: Path) -> dict[str, Any]:
    event = workdir / "event.yaml"
    event.write_text(relay.EVENT_YAML)
    redis = RedisServer(workdir / "redis-failover")
    redis.start()
    nodes = [Node(n, workdir, event, redis_url=redis.url) for n in ("a", "b", "c")]
    by_name = {n.name: n for n in nodes}
    pub = None
    results: list[dict[str, Any]] = []
    try:
        for node in nodes:
            node.start()
        pub = publisher([n.url for n in nodes], workdir, workdir / "sent-failover.log", 3600)
        time.sleep(8)
        for k in range(kills):
            held = leader(nodes)
            assert held is not None, "no leader"
            victim = by_name[held[0]]
            up = relay.metric(relay.http_get(f"{victim.url}/metrics"), 'forumcast_input_up{input="main-cam"}')
            publishers_there = up == 1
            survivors = [n for n in nodes if n is not victim]
            arrivals: dict[str, list[float]] = {n.name: [] for n in survivors}
            heads: dict[str, list[bytes]] = {n.name: [] for n in survivors}
            killed, taken = asyncio.run(_kill_watched(victim, survivors, held, arrivals, heads))
            made = _heads_of_term(redis, held[1] + 1)
            # the first fragment the new leader made, at each viewer, from the kill
            seen = [
                min(t for t, head in zip(arrivals[n], heads[n], strict=True) if head in made) - killed
                for n in arrivals
                if made.intersection(heads[n])
            ]
            freezes = []
            for times in arrivals.values():
                after = [t for t in times if t > killed]
                marks = [killed, *after]
                freezes.append(max((b - a for a, b in itertools.pairwise(marks)), default=99.0))
            result = {"kill": k + 1, "victim": victim.name, "had_publisher": publishers_there,
                      "lease_taken_s": taken, "freeze_s": max(freezes),
                      "first_new_fragment_s": max(seen) if seen else None}  # fmt: skip
            results.append(result)
            print(f"failover {result}", file=sys.stderr, flush=True)
            victim.start()
            time.sleep(6)  # settle: leases spread again, mirrors caught up
    finally:
        relay.stop(pub)
        for node in nodes:
            node.stop()
        redis.stop()
    summary: dict[str, Any] = {"kills": results}
    for name, had in (("leader_only", False), ("leader_and_publisher", True)):
        mine = [r for r in results if r["had_publisher"] is had]
        summary[name] = {
            "freeze": _spread([r["freeze_s"] for r in mine]),
            "first_new_fragment": _spread(
                [r["first_new_fragment_s"] for r in mine if r["first_new_fragment_s"]]
            ),
            "not_seen": sum(1 for r in mine if r["first_new_fragment_s"] is None),
            "lease_taken": _spread([r["lease_taken_s"] for r in mine if r["lease_taken_s"]]),
        }
    return summary


def _spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"count": len(values), "p50_s": round(statistics.median(values), 2), "p99_s": round(p99, 2),
            "max_s": round(max(values), 2)}  # fmt: skip


# --- redis cost ---------------------------------------------------------------------------------


def _redis_info(redis: RedisServer) -> tuple[float, int, int]:
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url)
    try:
        cpu, stats = client.info("cpu"), client.info("stats")
    finally:
        client.close()
    return (float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), int(stats["total_net_input_bytes"]),
            int(stats["total_net_output_bytes"]))  # fmt: skip


async def _redis_cost(nodes: list[Node], redis: RedisServer, seconds: float) -> dict[str, Any]:
    """One viewer per instance; Redis's CPU and traffic per second over ``seconds``."""
    stop = asyncio.Event()
    sink: list[float] = []
    tasks = [asyncio.ensure_future(_watch(_ws(n), sink, stop)) for n in nodes]
    await asyncio.sleep(6)
    before, started = await asyncio.to_thread(_redis_info, redis), time.monotonic()
    await asyncio.sleep(seconds)
    after, took = await asyncio.to_thread(_redis_info, redis), time.monotonic() - started
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "redis_cpu_pct": round(100 * (after[0] - before[0]) / took, 1),
        "net_in_kbit_s": round(8 * (after[1] - before[1]) / took / 1000),
        "net_out_kbit_s": round(8 * (after[2] - before[2]) / took / 1000),
        "media_messages_per_viewer_s": round(len(sink) / took / len(nodes), 1),
    }


def bench_redis(counts: list[int], seconds: float, workdir: Path) -> list[dict[str, Any]]:
    event = workdir / "event.yaml"
    event.write_text(relay.EVENT_YAML)
    rows = []
    for count in counts:
        redis = RedisServer(workdir / f"redis-{count}")
        redis.start()
        nodes = [Node(f"n{i}", workdir, event, redis_url=redis.url) for i in range(count)]
        pub = None
        try:
            for node in nodes:
                node.start()
            pub = publisher([nodes[0].url], workdir, workdir / f"sent-redis-{count}.log", seconds + 60)

            rows.append({"instances": count, **asyncio.run(_redis_cost(nodes, redis, seconds))})
            print(f"redis {rows[-1]}", file=sys.stderr, flush=True)
        finally:
            relay.stop(pub)
            for node in nodes:
                node.stop()
            redis.stop()
    return rows


# --- workers ------------------------------------------------------------------------------------


def bench_workers(counts: list[int], seconds: float, workdir: Path) -> list[dict[str, Any]]:
    event = workdir / "event.yaml"
    event.write_text(relay.EVENT_YAML)
    rows = []
    for workers in (1, 2):
        for viewers in counts:
            node = Node(f"w{workers}-{viewers}", workdir, event, workers=workers)
            sent = workdir / f"sent-w{workers}-{viewers}.log"
            pub = None
            try:
                node.start()
                pub = publisher([node.url], workdir, sent, seconds + 90)
                time.sleep(8)
                report = loadtest(node.url, viewers, seconds, sent, workdir)
                rows.append({"workers": workers, "viewers": viewers, "held": report["held"],
                             "added_p99_ms": report["added_latency_ms"]["p99"], "drops": report["drops"],
                             "loadgen_cpu_pct": report["cpu_percent"]})  # fmt: skip
                print(f"workers {rows[-1]}", file=sys.stderr, flush=True)
            finally:
                relay.stop(pub)
                node.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cluster benchmark (see the module docstring)")
    parser.add_argument("part", choices=["latency", "failover", "redis", "workers"])
    parser.add_argument("--viewers", default="50", help="viewers (latency), or a list (workers)")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--instances", default="1,2,3")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if not 5 <= args.duration <= relay.MAX_DURATION or not 1 <= args.kills <= 100:
        parser.error("--duration 5..600, --kills 1..100")
    counts = [int(v) for v in args.viewers.split(",")]
    if not all(1 <= c <= relay.MAX_VIEWERS for c in counts):
        parser.error(f"viewers 1..{relay.MAX_VIEWERS}")
    with tempfile.TemporaryDirectory(prefix="forumcast-bench-cluster-") as tmp:
        workdir = Path(tmp)
        if args.part == "latency":
            result: Any = bench_latency(counts[0], args.duration, workdir)
        elif args.part == "failover":
            result = bench_failover(args.kills, workdir)
        elif args.part == "redis":
            result = bench_redis([int(c) for c in args.instances.split(",")], args.duration, workdir)
        else:
            result = bench_workers(counts, args.duration, workdir)
        if os.environ.get("FORUMCAST_BENCH_KEEP"):
            shutil.copytree(workdir, os.environ["FORUMCAST_BENCH_KEEP"], dirs_exist_ok=True)
    print(relay.machine_line())
    print(json.dumps(result, indent=2))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps({"machine": relay.machine_line(), "result": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
