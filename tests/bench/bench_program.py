"""Program switching benchmark: take-to-first-new-frame and failover time, seen by a viewer.

Run on demand (pytest does not collect ``tests/bench``)::

    .venv/bin/python tests/bench/bench_program.py --takes 50 --kills 20 --gops 1,2

For every GOP length in ``--gops`` (seconds), from scratch: ``forumcast serve`` on a free
loopback port (stage ``main``, inputs ``main-cam`` and ``stern-uk``, one session long past, so
automation shows the slate and leaves takes alone; no demo inputs or models; the default
``stall_after`` of 1 s); a publisher subprocess (its own event loop, so that sending never
delays the viewer's timestamps) looping a pre-encoded test-pattern clip per input in real
time with ``tests/live/streams.py``'s ``LoopPublisher`` (640x360, 25 fps, the run's GOP,
~1 Mbps H.264 + AAC, 200 ms fragments), driven by commands on stdin (kill: abort the TCP
connection; restart; stall: stop sending but stay connected; resume) that it answers with
the ``time.monotonic()`` of the act, and logging when it hands each fragment to its socket
(the *send log*); and one ``streams.ProgramRecorder`` viewer in this process. Then:

- **takes** (``--takes``, after one uncounted take off the slate): ``POST
  /api/v1/stages/main/take`` of the input not on air, after a random pause (:func:`spacing`)
  so that takes land at random GOP phases, timed from just before the POST to the arrival of
  the first fragment after the ``now`` event naming it. The send log splits each into the
  *keyframe wait* (until the keyframe the cut happened at was sent) and the *relay*;
- **cached takes**: the same with ``"cut": "cached"``; the send log gives the age of the
  cached GOP's keyframe;
- with the first GOP only, **kills** (``--kills``): the on-air publisher's TCP connection is
  aborted, timed to the slate's first fragment at the viewer; it reconnects and its input is
  taken again (retrying while that answers 409); inputs alternate;
- and as many **stalls**: the on-air publisher stops sending, timed from its last fragment
  sent (what ``stall_after`` counts from) to the slate's first fragment: 1 s by definition,
  up to 1.1 s (the hub supervises every 0.1 s).

Percentiles are nearest-rank (``clients.probe.percentile``: with 50 samples p99 is the
maximum). Targets (issue 5): a keyframe take within one GOP + 50 ms, a cached take within
50 ms, a failover within 1.2 s. Also reported per phase: how much the program's media
timeline ran ahead of the wall clock (its *lead*: splicing and cached GOPs add media faster
than real time), and how busy everything was (machine, load average, server and publisher
CPU, the time the server waited for a CPU, this process's event-loop lags): on an
oversubscribed machine the tails measure the scheduler, not the server.

The tables printed at the end are Markdown (for the README); ``--json-out FILE`` keeps every
sample, ``--keep DIR`` the event file and the logs. Everything is bounded: the estimated run
time must fit in 570 s, the whole run is cut at 600 s, every wait has its own timeout, and
the server and the publisher are terminated (then killed) whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import functools
import itertools
import json
import math
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
# tests/ is no package: bench_relay and streams are imported by the names mypy gives them.
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "bench"), str(ROOT / "tests" / "live")]

import bench_relay as relay  # noqa: E402
from bench_relay import SECRET, STAGE  # noqa: E402
from streams import LoopPublisher, ProgramRecorder, _is_fragment  # noqa: E402

from clients.probe import percentile  # noqa: E402
from server.auth import Tokens  # noqa: E402
from server.encoding.testpattern import PatternSettings, encode_clip  # noqa: E402
from server.media.fmp4 import Fmp4Parser, split_clip  # noqa: E402
from server.media.types import InitSegment, MediaFragment, TrackKind  # noqa: E402

INPUTS = {"main-cam": "CAM", "stern-uk": "UK"}  # input id -> the label painted on its picture
SLATE = "slate"
FPS, FRAGMENT_MS = 25, 200
STALL_AFTER = 1.0  # the server's default, which this benchmark does not change
SPACING = (0.3, 1.5)  # seconds between one switch arriving and the next action (at least a GOP wide)
MAX_ESTIMATE, HARD_LIMIT = 570.0, 600.0
TAKE_TARGET_SLACK_MS, CACHED_TARGET_MS, FAILOVER_TARGET_MS = 50.0, 50.0, 1200.0
EVENT_YAML = relay.event_yaml(
    "Program benchmark",
    [("main-cam", "Main camera", "camera"), ("stern-uk", "Remote link UK", "remote")],
    ("2020-01-01T09:00:00+00:00", "2020-01-01T10:00:00+00:00"),  # long over: the slate is on
)


def spacing(gop: float) -> tuple[float, float]:
    """The random pause before each take or failover: 0.3-1.5 s, widened to 0.3 s + one GOP
    for longer GOPs. Both publishers start together, so their keyframes are nearly in phase
    and each take leaves from a keyframe of the other input: a window narrower than a GOP
    would never land a take just after a keyframe (the worst case) of a 2 s GOP."""
    return SPACING[0], max(SPACING[1], SPACING[0] + gop)


def clip_seconds(gop_frames: int) -> float:
    """A clip of whole GOPs, at least 6 s long."""
    return gop_frames * math.ceil(6 * FPS / gop_frames) / FPS


# --- the publisher child ----------------------------------------------------------------------


async def _publish_child(base: str, gop_frames: int, send_log: Path) -> int:
    sent: list[tuple[str, float, bool]] = []  # (input, handed to the socket, keyframe)
    publishers: dict[str, LoopPublisher] = {}

    def log(input_id: str, fragment: MediaFragment) -> None:
        sent.append((input_id, time.monotonic(), fragment.keyframe))

    for input_id, label in INPUTS.items():
        settings = PatternSettings(
            label=label, width=640, height=360, fps=FPS, gop=gop_frames, fragment_ms=FRAGMENT_MS,
            bitrate=1_000_000, audio="aac", preset="veryfast",
        )  # fmt: skip
        clip = split_clip(encode_clip(label, clip_seconds(gop_frames), settings))
        key = Tokens(SECRET).stream_key(input_id)
        url = f"{base.replace('http', 'ws', 1)}/ws/publish/{input_id}?key={key}&takeover=1"
        publishers[input_id] = LoopPublisher(url, clip, functools.partial(log, input_id))
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        for publisher in publishers.values():
            await publisher.start()
        print(json.dumps({"ready": True}), flush=True)
        while line := (await reader.readline()).decode().strip():
            verb, _, input_id = line.partition(" ")
            if verb == "quit":
                break
            publisher = publishers[input_id]
            answer: dict[str, Any] = {"at": time.monotonic()}
            if verb == "kill":
                answer["at"] = await publisher.kill()
            elif verb == "restart":
                await publisher.restart()
                answer["at"] = time.monotonic()
            elif verb == "stall":
                publisher.stall()
                await asyncio.sleep(FRAGMENT_MS / 1000 + 0.1)  # a fragment already due still goes out
                answer["last_sent"] = next((t for i, t, _ in reversed(sent) if i == input_id), None)
            elif verb == "resume":
                publisher.resume()
            else:
                answer = {"error": f"unknown command {line!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        for publisher in publishers.values():
            await publisher.kill()
        send_log.write_text("".join(f"{i} {at:.6f} {int(kf)}\n" for i, at, kf in sent))
    print(json.dumps({"bye": True}), flush=True)
    return 0


class PublisherControl:
    """The bench's end of the publisher child: one command, one JSON answer."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def answer(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the publisher exited ({await self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    async def command(self, verb: str, input_id: str = "") -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{verb} {input_id}\n".encode())
        await self.proc.stdin.drain()
        return await self.answer()

    async def close(self) -> None:
        """Quit, or be killed after 5 s."""
        with contextlib.suppress(Exception):
            await self.command("quit")
        try:
            await asyncio.wait_for(self.proc.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


# --- the viewer -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # when the first fragment of the new source arrived (time.monotonic)
    now: dict[str, Any]  # the now event naming it
    reinit: bool  # a reinit event came with the switch
    init: bytes | None  # the init segment that came with it (or before it, since the mark)


async def switched(viewer: ProgramRecorder, source: str, mark: int, timeout: float) -> Arrival:
    """The first fragment after the first ``now`` naming ``source`` at or after item ``mark``.
    (The recorder stamps every message as it arrives: polling for it here delays nothing.)"""
    deadline = time.monotonic() + timeout
    index, now, reinit, init = mark, None, False, None
    while True:
        while index < len(viewer.items):
            at, item = viewer.items[index]
            index += 1
            if isinstance(item, dict):
                reinit = reinit or (now is None and item["type"] == "reinit")
                if now is None and item["type"] == "now" and item["program"]["source"] == source:
                    now = item
            elif item[4:8] == b"ftyp":  # before the now at a switch, after it on joining
                init = item
            elif now is not None and _is_fragment(item):
                return Arrival(at, now, reinit, init)
        if viewer.closed is not None:
            raise RuntimeError(f"the viewer was disconnected: {viewer.closed}")
        if time.monotonic() > deadline:
            shown = [
                i["program"]["source"]
                for _, i in viewer.items[mark:]
                if isinstance(i, dict) and i["type"] == "now"
            ]
            raise TimeoutError(f"no fragment of {source!r} within {timeout:g} s (now events: {shown})")
        await asyncio.sleep(0.005)


def audio_of(init: bytes | None) -> str | None:
    """``"mp4a.40.2 48000 Hz 1 ch"``: the audio an init segment declares."""
    if init is None:
        return None
    audio = next((t for t in split_clip(init)[0].tracks if t.kind is TrackKind.AUDIO), None)
    return "none" if audio is None else f"{audio.codec} {audio.sample_rate} Hz {audio.channels} ch"


def timeline_lead(items: list[tuple[float, dict[str, Any] | bytes]]) -> list[tuple[int, float]]:
    """(item index, seconds the program's video timeline is ahead of the wall clock since its
    first fragment) for every video fragment the viewer received."""
    out: list[tuple[int, float]] = []
    parser: Fmp4Parser | None = None
    video = None
    origin: tuple[float, float] | None = None
    for index, (at, item) in enumerate(items):
        if isinstance(item, dict):
            if item["type"] in ("init", "reinit"):
                parser = Fmp4Parser()
            continue
        for parsed in parser.feed(item) if parser is not None else ():
            if isinstance(parsed, InitSegment):
                video = parsed.video
            elif video is not None and (traf := parsed.track(video.id)) is not None:
                media = traf.base_decode_time / video.timescale
                origin = origin or (at, media)
                out.append((index, (media - origin[1]) - (at - origin[0])))
    return out


# --- conditions -------------------------------------------------------------------------------


def schedstat(pid: int) -> tuple[int, int]:
    """(ns on a CPU, ns runnable but waiting for a CPU) of a process's main thread."""
    try:
        run, wait, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0, 0
    return int(run), int(wait)


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    ticks: tuple[int, int]  # busy, all (every CPU)
    sched: dict[str, tuple[int, int]]


class Probe:
    """How busy the machine and the benchmark's own processes were over a phase (an
    oversubscribed machine delays the server's event loop, whatever the server does), and
    this process's event-loop lags (the viewer's timestamps are only as good as its loop)."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self.lags: list[tuple[float, float]] = []  # (when, seconds late), those over 5 ms

    async def watch_loop(self, every: float = 0.01) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(every)
            if (late := time.monotonic() - start - every) > 0.005:
                self.lags.append((start, late))

    def snapshot(self) -> Snapshot:
        return Snapshot(
            time.monotonic(), relay.machine_ticks()[1:], {n: schedstat(p) for n, p in self.pids.items()}
        )

    def since(self, begin: Snapshot) -> dict[str, Any]:
        end = self.snapshot()
        seconds = max(end.at - begin.at, 1e-9)
        busy, total = (e - b for e, b in zip(end.ticks, begin.ticks, strict=True))
        out: dict[str, Any] = {
            "seconds": round(seconds, 1),
            "machine_busy_pct": round(busy / total * 100, 1) if total else None,
            "load_average": round(os.getloadavg()[0], 2),
        }
        for name in self.pids:
            (run0, wait0), (run1, wait1) = begin.sched[name], end.sched[name]
            out[f"{name}_cpu_pct"] = round((run1 - run0) / 1e9 / seconds * 100, 1)
            out[f"{name}_runqueue_ms_per_s"] = round((wait1 - wait0) / 1e6 / seconds, 1)
        lags = [late for at, late in self.lags if begin.at <= at < end.at]
        out["bench_lags_over_20ms"] = sum(late > 0.02 for late in lags)
        out["bench_lag_max_ms"] = round(max(lags, default=0.0) * 1000, 1)
        return out


# --- one run ------------------------------------------------------------------------------------


class Bench:
    """One server, its publishers and its viewer, for one GOP length."""

    def __init__(
        self,
        gop: float,
        base: str,
        http: aiohttp.ClientSession,
        viewer: ProgramRecorder,
        probe: Probe,
        seed: int,
    ) -> None:
        self.gop, self.http, self.viewer, self.probe = gop, http, viewer, probe
        self.take_url = f"{base}/api/v1/stages/{STAGE}/take"
        token = Tokens(SECRET).issue("producer", stage=STAGE, ttl=timedelta(hours=1), subject="bench")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.rng = random.Random(f"{seed}-{gop}")
        self.marks: dict[str, tuple[int, int]] = {}  # phase -> (first item, end item)
        self.conditions: dict[str, dict[str, Any]] = {}  # phase -> how busy everything was

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        begin, snapshot = len(self.viewer.items), self.probe.snapshot()
        yield
        self.marks[name] = (begin, len(self.viewer.items))
        self.conditions[name] = self.probe.since(snapshot)

    async def take(self, source: str, cut: str | None = None, retry_until: float = 0.0) -> dict[str, Any]:
        """Take ``source`` and time it to its first fragment at the viewer; while the input is
        not up again (409), retry every 50 ms until ``retry_until`` (time.monotonic)."""
        body = {"input": source} | ({"cut": cut} if cut else {})
        while True:
            mark, started = len(self.viewer.items), time.monotonic()
            async with self.http.post(self.take_url, json=body, headers=self.headers) as response:
                status, answer = response.status, await response.json()
            answered = time.monotonic()
            if status == 200:
                break
            if status != 409 or answered > retry_until:
                raise RuntimeError(f"take {source}: {status} {answer}")
            await asyncio.sleep(0.05)
        arrival = await switched(self.viewer, source, mark, self.gop + 5.0)
        return {
            "source": source,
            "cut": cut or "keyframe",
            "t0": started,
            "arrived": arrival.at,
            "ms": (arrival.at - started) * 1000,
            "response_ms": (answered - started) * 1000,
            "reinit": arrival.reinit,
            "reason": arrival.now["program"]["reason"],
        }

    async def take_when_up(self, source: str) -> None:
        await self.take(source, retry_until=time.monotonic() + 10.0)

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(*spacing(self.gop)))

    async def takes(self, count: int, cut: str | None) -> list[dict[str, Any]]:
        samples = []
        for _ in range(count):
            await self.pause()
            samples.append(await self.take(next(i for i in INPUTS if i != self.viewer.source()), cut))
        return samples

    async def failovers(self, control: PublisherControl, count: int, how: str) -> list[dict[str, Any]]:
        samples = []
        for index in range(count):
            source = list(INPUTS)[index % 2]
            if self.viewer.source() != source:
                await self.take_when_up(source)
            await self.pause()
            mark = len(self.viewer.items)
            answer = await control.command(how, source)
            arrival = await switched(self.viewer, SLATE, mark, 5.0)
            sample: dict[str, Any] = {
                "source": source,
                "reason": arrival.now["program"]["reason"],
                "reinit": arrival.reinit,
                "slate_audio": audio_of(arrival.init),
                "arrived": arrival.at,
            }
            if how == "kill":
                sample |= {"killed": answer["at"], "ms": (arrival.at - answer["at"]) * 1000}
            else:
                last = answer["last_sent"] if answer["last_sent"] is not None else answer["at"]
                sample |= {
                    "last_sent": last,
                    "ms": (arrival.at - last) * 1000,
                    "from_command_ms": (arrival.at - answer["at"]) * 1000,
                }
            await control.command("restart" if how == "kill" else "resume", source)
            samples.append(sample)
        return samples


def sent_keyframes(path: Path) -> dict[str, list[float]]:
    """input -> the times its keyframe fragments were sent, from the send log."""
    out: dict[str, list[float]] = {i: [] for i in INPUTS}
    lines = path.read_text().splitlines() if path.exists() else []
    for input_id, at, keyframe in (line.split() for line in lines):
        if keyframe == "1":
            out[input_id].append(float(at))
    return out


def annotate_takes(samples: list[dict[str, Any]], sent: dict[str, list[float]]) -> None:
    """Split each keyframe take at the keyframe the cut happened at (the last one its source
    sent before the viewer had the first fragment): the wait for it, then the relay. For a
    cached take, that keyframe opened the cached GOP: how old it was at the take."""
    for sample in samples:
        keyframes = sent[sample["source"]]
        at = bisect.bisect_right(keyframes, sample["arrived"]) - 1
        if at < 0:
            continue
        keyframe = sample["keyframe_sent"] = keyframes[at]
        if sample["cut"] == "cached":
            sample["cached_keyframe_age_ms"] = (sample["t0"] - keyframe) * 1000
            continue
        sample["keyframe_wait_ms"] = (keyframe - sample["t0"]) * 1000
        sample["relay_ms"] = (sample["arrived"] - keyframe) * 1000
        if at > 0:  # where in the source's GOP the POST landed (0: just after a keyframe)
            gop = keyframe - keyframes[at - 1]
            sample["gop_phase"] = (sample["t0"] - keyframes[at - 1]) / gop if gop > 0 else None


def measured_gop(sent: dict[str, list[float]]) -> float | None:
    gaps = [b - a for keyframes in sent.values() for a, b in itertools.pairwise(keyframes) if b - a < 10]
    return round(sorted(gaps)[len(gaps) // 2], 3) if gaps else None


def lead_over(leads: list[tuple[int, float]], span: tuple[int, int]) -> float | None:
    """How much the program's lead grew between two item indices."""
    indices = [index for index, _ in leads]
    before = bisect.bisect_left(indices, span[0]) - 1
    after = bisect.bisect_left(indices, span[1]) - 1
    if before < 0 or after < 0:
        return None
    return round(leads[after][1] - leads[before][1], 3)


async def run_once(gop: float, options: argparse.Namespace, workdir: Path, failover: bool) -> dict[str, Any]:
    gop_frames, port, tag = round(gop * FPS), relay.free_port(), f"gop{gop:g}"
    base = f"http://127.0.0.1:{port}"
    event, send_log = workdir / "event.yaml", workdir / f"sent-{tag}.log"
    event.write_text(EVENT_YAML)
    send_log.unlink(missing_ok=True)
    env = {**os.environ, "FORUMCAST_SECRET": SECRET}
    env |= {"FORUMCAST_DEMO_INPUTS": "false", "FORUMCAST_DEMO_MODELS": "false"}  # no 3D ingest at start
    env.pop("PYTHONASYNCIODEBUG", None)  # debug mode would slow every process down
    server: subprocess.Popen[bytes] | None = None
    control: PublisherControl | None = None
    viewer: ProgramRecorder | None = None
    probe = Probe()
    lag_task = asyncio.create_task(probe.watch_loop())
    logs: dict[str, IO[str]] = {
        name: (workdir / f"{name}-{tag}.log").open("w") for name in ("server", "publisher")
    }
    result: dict[str, Any] = {"gop_s": gop, "gop_frames": gop_frames}
    try:
        server = relay.start_server(event, port, workdir, env, logs["server"], "info")  # every switch logged
        health = f"{base}/healthz"
        await asyncio.to_thread(relay.wait_for, "server health", lambda: relay.http_get(health), 30, server)
        async with aiohttp.ClientSession() as http:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "_publish", base, str(gop_frames), str(send_log),
                cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=logs["publisher"], start_new_session=True,
            )  # fmt: skip
            control = PublisherControl(proc)
            viewer = ProgramRecorder(await http.ws_connect(f"ws://127.0.0.1:{port}/ws/watch/{STAGE}"))
            viewer.start()
            probe.pids = {"server": server.pid, "publisher": proc.pid, "bench": os.getpid()}
            bench = Bench(gop, base, http, viewer, probe, options.seed)
            first = await switched(viewer, SLATE, 0, 30.0)  # the slate is on before anything else
            result["initial_slate_audio"] = audio_of(first.init)
            await control.answer(60.0)  # ready: both publishers connected
            await bench.take_when_up(next(iter(INPUTS)))  # off the slate (a re-init): not counted

            for key, cut in (("takes", None), ("cached", "cached")):
                print(f"   {options.takes} {cut or 'keyframe'} takes ...", file=sys.stderr, flush=True)
                with bench.phase(key):
                    result[key] = await bench.takes(options.takes, cut)
            for key, how in (("kills", "kill"), ("stalls", "stall")) if failover and options.kills else ():
                print(f"   {options.kills} {key} ...", file=sys.stderr, flush=True)
                with bench.phase(how):
                    result[key] = await bench.failovers(control, options.kills, how)
            await asyncio.sleep(0.5)
            result["viewer_disconnected"] = viewer.closed is not None
            metrics = await asyncio.to_thread(relay.http_get, f"{base}/metrics")
            result["switches"] = {
                line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("forumcast_program_switches_total{")
            }
            await control.close()
            control = None
            sent = sent_keyframes(send_log)
            result["measured_gop_s"] = measured_gop(sent)
            for kind in ("takes", "cached"):
                annotate_takes(result[kind], sent)
            leads = timeline_lead(viewer.items)
            result["lead_growth_s"] = {phase: lead_over(leads, span) for phase, span in bench.marks.items()}
            result["conditions"] = bench.conditions
            await viewer.ws.close()
    finally:
        if viewer is not None:
            await viewer.stop()
        lag_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag_task
        if control is not None:
            await control.close()
        relay.stop(server, 15)
        for log in logs.values():
            log.close()
    return result


# --- output -------------------------------------------------------------------------------------


def stats(values: Iterable[float], digits: int = 1) -> dict[str, Any]:
    ordered = sorted(values)
    last, first = (ordered[-1], ordered[0]) if ordered else (None, None)
    figures = {"p50": percentile(ordered, 0.50), "p99": percentile(ordered, 0.99), "max": last, "min": first}
    return {"n": len(ordered)} | {k: None if v is None else round(v, digits) for k, v in figures.items()}


def rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per measure: its figures, its target and whether p99 met it."""
    out = []
    for r in results:
        measures = {
            "takes": ("take → first new frame (keyframe cut)", r["gop_s"] * 1000 + TAKE_TARGET_SLACK_MS),
            "cached": ("take → first new frame (`cut: cached`)", CACHED_TARGET_MS),
            "kills": ("failover: publisher killed → slate", FAILOVER_TARGET_MS),
            "stalls": ("failover: publisher stalled → slate (from its last fragment)", FAILOVER_TARGET_MS),
        }
        for key, (name, target) in measures.items():
            if key in r:
                figures = stats(s["ms"] for s in r[key])
                met = figures["p99"] is not None and figures["p99"] <= target
                out.append(
                    {"measure": name, "inputs": f"GOP {r['gop_s']:g} s", "key": key, **figures}
                    | {"target_ms": target, "met": met}
                )
    return out


def cell(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def slash(figures: dict[str, Any], *keys: str) -> str:
    return " / ".join(cell(figures.get(key)) for key in keys)


def markdown(header: str, align: str, lines: Iterable[list[Any]]) -> str:
    """A Markdown table: ``header`` is the column names joined by " | ", ``align`` an ``l`` or
    an ``r`` per column, ``lines`` the rows (a list of cells each)."""
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    return "\n".join([f"| {header} |", rule, *(f"| {' | '.join(map(cell, line))} |" for line in lines)])


def table(measures: list[dict[str, Any]]) -> str:
    lines = [
        [m["measure"], m["inputs"], m["p50"], m["p99"], m["max"], m["n"],
         f"≤ {m['target_ms']:g} ms" + (" (≥ 1000 by definition)" if m["key"] == "stalls" else ""),
         "yes" if m["met"] else "**no**"]
        for m in measures
    ]  # fmt: skip
    return markdown("measure | inputs | p50 ms | p99 ms | max ms | n | target | met?", "llrrrrll", lines)


def breakdown(results: list[dict[str, Any]]) -> str:
    """Where the time of the takes went, from the send log."""
    lines = []
    for r in results:
        takes, both = r["takes"], r["takes"] + r["cached"]
        phase = stats((s["gop_phase"] for s in takes if s.get("gop_phase") is not None), 2)
        wait = stats(s["keyframe_wait_ms"] for s in takes if "keyframe_wait_ms" in s)
        relayed = stats(s["relay_ms"] for s in takes if "relay_ms" in s)
        age = stats(s["cached_keyframe_age_ms"] for s in r["cached"] if "cached_keyframe_age_ms" in s)
        answered = stats(s["response_ms"] for s in both)
        lines.append([
            f"GOP {r['gop_s']:g} s (measured {cell(r['measured_gop_s'])} s)",
            slash(phase, "min", "p50", "max"), slash(wait, "p50", "p99", "max"),
            slash(relayed, "p50", "p99", "max"), slash(answered, "p50", "p99"), slash(age, "p50", "max"),
            sum(s["reinit"] for s in both), slash(r["lead_growth_s"], "takes", "cached", "kill", "stall"),
        ])  # fmt: skip
    return markdown(
        "takes | GOP phase of the POSTs min / p50 / max | keyframe wait p50 / p99 / max ms"
        " | relay p50 / p99 / max ms | POST answered p50 / p99 ms | cached keyframe age p50 / max ms"
        " | re-inits | program lead growth s (takes / cached / kills / stalls)",
        "lrrrrrrr",
        lines,
    )


def conditions_table(results: list[dict[str, Any]]) -> str:
    """How busy the machine and each process were in each phase."""
    lines = [
        [f"GOP {r['gop_s']:g} s", phase, c["seconds"], c["machine_busy_pct"], c["load_average"],
         c["server_cpu_pct"], c["server_runqueue_ms_per_s"], c["publisher_cpu_pct"],
         f"{c['bench_lags_over_20ms']} ({cell(c['bench_lag_max_ms'])})"]
        for r in results
        for phase, c in r.get("conditions", {}).items()
    ]  # fmt: skip
    return markdown(
        "run | phase | s | machine busy % | load avg | server CPU % | server run-queue wait ms/s"
        " | publisher CPU % | bench loop lags > 20 ms (max ms)",
        "llrrrrrrr",
        lines,
    )


def failover_notes(results: list[dict[str, Any]], slow_ms: float = 100.0) -> str:
    """The failovers that took long, with the slate's audio (a slate clip for an audio layout
    not seen yet is encoded on demand), and the reasons the program gave."""
    lines = []
    for r in results:
        for key in ("kills", "stalls"):
            if key not in r:
                continue
            samples = r[key]
            reasons = sorted({s["reason"] for s in samples})
            slow = [
                f"#{n} {s['ms']:.0f} ms (slate audio {s['slate_audio']})"
                for n, s in enumerate(samples, 1)
                if s["ms"] > (STALL_AFTER * 1000 if key == "stalls" else 0) + slow_ms
            ]
            lines.append(
                f"- {key} (GOP {r['gop_s']:g} s inputs; the first slate's audio: {r['initial_slate_audio']}):"
                f" reasons {', '.join(reasons)}; over {slow_ms:g} ms"
                f"{' past the threshold' if key == 'stalls' else ''}: {'; '.join(slow) or 'none'}"
            )
    return "\n".join(lines)


def revision() -> str:
    """The commit measured (``+dirty`` with uncommitted changes)."""
    try:
        head, status = (
            subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
            for args in (["rev-parse", "--short", "HEAD"], ["status", "--porcelain"])
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+dirty" if status else "")


def command_line(options: argparse.Namespace) -> str:
    """The command that repeats this run, every option spelled out."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    words = [str(python), str(Path(__file__).resolve().relative_to(ROOT))]
    words += ["--takes", str(options.takes), "--kills", str(options.kills)]
    words += ["--gops", ",".join(f"{g:g}" for g in options.gops), "--seed", str(options.seed)]
    words += ["--json-out", str(options.json_out)] if options.json_out is not None else []
    words += ["--keep", str(options.keep)] if options.keep is not None else []
    return shlex.join(words)


def estimate(options: argparse.Namespace) -> float:
    """Seconds the whole run should take (startup, spacing, keyframe waits, failovers)."""
    total = 0.0
    for index, gop in enumerate(options.gops):
        pause = sum(spacing(gop)) / 2
        total += 10 + options.takes * (pause + gop / 2 + 0.05) + options.takes * (pause + 0.05)
        if index == 0:
            total += options.kills * (pause + 0.3 + gop / 2) + options.kills * (pause + 1.2 + gop / 2)
    return total


def _gops(text: str) -> list[float]:
    gops = [float(part) for part in text.split(",") if part.strip()]
    if not gops or not all(0.2 <= g <= 4 and abs(g * FPS - round(g * FPS)) < 1e-9 for g in gops):
        raise argparse.ArgumentTypeError(f"GOPs must be 0.2..4 s, whole frames at {FPS} fps")
    return gops


async def run_all(options: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    async with asyncio.timeout(HARD_LIMIT):
        for index, gop in enumerate(options.gops):
            print(f"== GOP {gop:g} s ...", file=sys.stderr, flush=True)
            results.append(await run_once(gop, options, workdir, failover=index == 0))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_publish"]:  # the publisher child: _publish SERVER GOP_FRAMES SEND_LOG
        return asyncio.run(_publish_child(argv[1], int(argv[2]), Path(argv[3])))
    parser = argparse.ArgumentParser(description="program switching benchmark (see the module docstring)")
    parser.add_argument("--takes", type=int, default=50, help="takes per GOP and per cut kind (50)")
    parser.add_argument("--kills", type=int, default=20, help="kills, and as many stalls (20)")
    parser.add_argument("--gops", type=_gops, default=[1.0, 2.0], help="GOP lengths in seconds (1,2)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the random spacing (5)")
    parser.add_argument("--json-out", type=Path, help="write every sample here as JSON")
    parser.add_argument("--keep", type=Path, help="keep the event file and the logs in this folder")
    args = parser.parse_args(argv)
    if not 1 <= args.takes <= 200 or not 0 <= args.kills <= 100:
        parser.error("--takes must be 1..200 and --kills 0..100")
    if (seconds := estimate(args)) > MAX_ESTIMATE:
        parser.error(
            f"that would take about {seconds:.0f} s; at most {MAX_ESTIMATE:g} s (fewer takes or GOPs)"
        )
    print(f"estimated {seconds:.0f} s", file=sys.stderr, flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="forumcast-bench-") as scratch:
        workdir = args.keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(run_all(args, workdir))
    measures = rows(results)
    machine, commit, command = relay.machine_line(), revision(), command_line(args)
    print(f"\n{machine}; commit {commit}; {time.monotonic() - started:.0f} s\n")
    print(
        "\n\n".join([table(measures), breakdown(results), failover_notes(results), conditions_table(results)])
    )
    print(f"\nCommand: `{command}`")
    if args.json_out is not None:
        report = {
            "machine": machine,
            "commit": commit,
            "command": command,
            "table": measures,
            "results": results,
        }
        args.json_out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
