"""RTMP ingest benchmark: forumcast against nginx-rtmp, CPU per publisher and added latency.

Run on demand from the repository root (pytest does not collect ``tests/bench``)::

    .venv/bin/python tests/bench/bench_rtmp.py [--publishers 20] [--window 30] [--rounds 1]
    .venv/bin/python tests/bench/bench_rtmp.py --profile        # + py-spy of forumcast's window

Two targets of issue 15:

**CPU.** One 2.5 Mbit/s clip (H.264 CBR 2,372 kbit/s with filler, 1280x720, 25 fps, a
keyframe every second, no B-frames, + AAC 128 kbit/s; encoded once by ffmpeg into the test
media cache outside the repository). Both servers run side by side, pinned to core 0:
``forumcast serve`` (no demo inputs or models, ``rtmp_port`` set, ``srt_port`` 0) and
``nginx -c CONF -p TMP -g 'daemon off;'`` with libnginx-mod-rtmp (one worker, ``live on``,
``hls on``, ``hls_fragment 2s``, under a tmp dir). The event gives each of the N inputs a
stage of its own with a session on it now, so every input is on air in its stage's program
and packaged as LL-HLS, as nginx packages every stream as HLS. N ffmpeg publishers
(``ffmpeg -re -stream_loop -1 -i clip.flv -c copy -f flv URL``, pinned to core 1) feed one
server at a time; after ``--warmup`` seconds the server's CPU (utime + stime from
``/proc/PID/stat``, summed over all its processes: nginx's master and worker, forumcast and
its ingest workers) is counted over ``--window`` seconds. With ``--rounds 2`` the order is
forumcast, nginx, nginx, forumcast, so a machine getting busier slows both alike. Each
window is checked for real work: every forumcast input ``up`` and ``on_air`` in
``GET /api/v1/inputs`` (a producer token minted by ``forumcast token``) at the input
bitrate, every nginx stream with HLS segments written, every publisher still running.
A stage's first publisher makes forumcast encode that stage's slate for the camera's audio
layout (a one-off PyAV encode per stage, in a thread): a 5 s warm-up leaves some of those
in the first forumcast window, ``--warmup 20`` measures the steady state. ``--profile``
runs ``py-spy record --gil`` (only samples holding the GIL: busy Python, not the idle
event loop) against forumcast over its windows and prints the hot functions.

**Latency.** A stage with inputs ``lat-rtmp`` and ``lat-ws``, off air, each watched through
its producer preview (``WS /ws/watch/input/{input}``), joined before anything is published.
Two publishers in this process (pinned to core 1), concurrently, from the same clip looped
for ``--window`` + ``--warmup`` seconds:

- RTMP: our own client (handshake, ``connect``, ``publish``, chunk size 4096 as ffmpeg
  sends, media messages built with ``server.media.rtmp``), writing each FLV tag when the
  FLV timestamp clock, matched to the wall clock at the start, reaches it; the wall time
  each video tag is written is its frame's send time;
- WebSocket: the same tags remuxed by our :class:`~server.media.flv_remux.Remuxer` into
  200 ms fragments (what the server makes of the RTMP input), each fragment sent when its
  last frame's time is reached on the same clock (started half a frame later, so the two
  publishers do not hit the server in the same instant); a frame's send time is its time
  on that clock, the last frame's is the moment its fragment is written.

The viewers parse what arrives (:class:`~server.media.fmp4.Fmp4Parser`) and map each
fragment's video samples back to FLV milliseconds through tfdt / timescale (the preview's
timeline shifts times by where the first fragment starts: the shift is taken from the first
fragment, which holds the first frame sent). A frame's latency is the arrival of the
message holding it minus its send time; frames of the warm-up are left out. Reported:
p50 / p99 / max for the frame that completes each fragment (its last) and for all frames,
both paths, and the added p99 (RTMP − WebSocket).

Everything is loopback, bounded (at most 100 publishers and 300 s windows) and stops by
itself; ``--keep DIR`` keeps the servers' and publishers' logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "bench")]

from bench_program import markdown, revision  # noqa: E402
from bench_relay import CLK_TCK, SECRET, free_port, machine_line, stop, summarise_profile, wait_for  # noqa: E402

#: Targets of the issue: forumcast's CPU per publisher / nginx-rtmp's, and the p99 latency
#: an RTMP input adds over a WebSocket input (ms).
CPU_TARGET, LATENCY_TARGET_MS = 1.5, 50.0
SERVER_CPU, CLIENT_CPU = 0, 1
NGINX_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
MAX_PUBLISHERS, MAX_WINDOW = 100, 300.0
FRAGMENT_MS = 200
#: Seconds a server gets after its start before anything is measured.
SETTLE_S = 5.0
LOG_LEVEL = "warning"
LATENCY_STAGE, RTMP_INPUT, WS_INPUT = "lat", "lat-rtmp", "lat-ws"
#: The WebSocket publisher runs this much behind the RTMP one (half a frame at 25 fps).
WS_OFFSET_S = 0.02
CLIP_ARGS = [
    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "20",
    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "0",
    "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
    "-b:v", "2372k", "-minrate", "2372k", "-maxrate", "2372k", "-bufsize", "1186k",
    "-x264-params", "nal-hrd=cbr:force-cfr=1",
    "-c:a", "aac", "-b:a", "128k", "-ar", "48000",
]  # fmt: skip


def clip() -> Path:
    """The 2.5 Mbit/s FLV clip, encoded once into the test media cache."""
    from tests.media.media_files import encoded

    return encoded("rtmp_bench_720p25_2500k", CLIP_ARGS, "flv")


def input_key(input_id: str) -> str:
    return f"bench-key-{input_id}-0123456789"


def event_yaml(publishers: int, *, latency: bool = False) -> str:
    """A stage per camera input with a session on it now (so it is on air in the stage's
    program); or (``latency``) one stage with the latency inputs and no session."""
    lines = [
        "event: {id: rtmpbench, title: {zh: 基准, en: RTMP benchmark}, timezone: UTC}",
        "venues: [{id: loopback, name: {zh: 本机, en: Loopback}, timezone: UTC}]",
        "stages:",
    ]
    if latency:
        return "\n".join(
            [
                *lines,
                f"  - {{id: {LATENCY_STAGE}, title: {{zh: 延迟, en: Latency}}, kind: forum, venue: loopback,",
                f"     inputs: [{{id: {RTMP_INPUT}, title: RTMP, kind: encoder}},"
                f" {{id: {WS_INPUT}, title: WebSocket, kind: encoder}}]}}",
                "sessions:",  # one, long over (an event needs one): the stage shows its slate
                f"  - {{id: past, stage: {LATENCY_STAGE}, title: {{zh: 过去, en: Past}},"
                " start: 2020-01-01T00:00:00+00:00, end: 2020-01-01T01:00:00+00:00}",
                "",
            ]
        )
    for n in range(publishers):
        lines += [
            f"  - {{id: s{n}, title: {{zh: 台{n}, en: Stage {n}}}, kind: forum, venue: loopback,",
            f"     inputs: [{{id: cam{n}, title: Camera {n}, kind: camera}}]}}",
        ]
    lines.append("sessions:")
    for n in range(publishers):
        lines.append(
            f"  - {{id: t{n}, stage: s{n}, title: {{zh: 会{n}, en: Session {n}}},"
            f" start: 2020-01-01T00:00:00+00:00, end: 2099-01-01T00:00:00+00:00, input: cam{n}}}"
        )
    return "\n".join(lines) + "\n"


# --- processes and their CPU ----------------------------------------------------------------------


def tree_ticks(root: int) -> int:
    """utime + stime of ``root`` and every process below it, in clock ticks."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    total = 0
    for pid, count in ticks.items():
        at = pid
        while at > 1 and at != root:
            at = parent.get(at, 0)
        if at == root:
            total += count
    return total


@dataclass(slots=True)
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    urls: list[str]  # one RTMP URL per publisher
    check: Callable[[], dict[str, Any]]  # what shows the window did real work


def start_forumcast(
    workdir: Path, publishers: int, log: IO[str], *, latency: bool = False
) -> tuple[Server, str, int, str]:
    """forumcast on core 0 with the event of :func:`event_yaml`; the server, its HTTP base
    URL, its RTMP port, a producer token."""
    event = workdir / f"event{'-latency' * latency}.yaml"
    event.write_text(event_yaml(publishers, latency=latency), encoding="utf-8")
    port, rtmp_port = free_port(), free_port()
    inputs = [RTMP_INPUT, WS_INPUT] if latency else [f"cam{n}" for n in range(publishers)]
    env = {
        **os.environ,
        "FORUMCAST_SECRET": SECRET,
        "FORUMCAST_DEMO_INPUTS": "false",
        "FORUMCAST_DEMO_MODELS": "false",
        "FORUMCAST_RTMP_PORT": str(rtmp_port),
        "FORUMCAST_SRT_PORT": "0",
        "FORUMCAST_STREAM_KEYS": ",".join(f"{i}={input_key(i)}" for i in inputs),
    }
    env.pop("PYTHONASYNCIODEBUG", None)  # debug mode would slow the server down
    token = subprocess.run(
        [sys.executable, "-m", "server", "token", "--role", "producer"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    proc = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CPU), sys.executable, "-m", "server", "serve", "--event", str(event),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", LOG_LEVEL,
         "--data-dir", str(workdir / "data")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for("forumcast health", lambda: http_json(f"{base}/healthz") is not None, 60, proc)
    urls = [f"rtmp://127.0.0.1:{rtmp_port}/live/cam{n}?key={input_key(f'cam{n}')}" for n in range(publishers)]

    def check() -> dict[str, Any]:
        found = {i["id"]: i for i in http_json(f"{base}/api/v1/inputs", token)["inputs"]}
        cams = [found[f"cam{n}"] for n in range(publishers)]
        rates = [c["bitrate"] or 0 for c in cams]
        return {
            "up": sum(bool(c["up"]) for c in cams),
            "on_air": sum(bool(c["on_air"]) for c in cams),
            "kbps_min": round(min(rates) / 1000),
            "kbps_mean": round(statistics.mean(rates) / 1000),
            "ok": all(c["up"] and c["on_air"] for c in cams) and min(rates) > 1_500_000,
        }

    return Server("forumcast", proc, urls, check), base, rtmp_port, token


def start_nginx(workdir: Path, publishers: int, log: IO[str]) -> Server:
    """nginx with libnginx-mod-rtmp on core 0, HLS into ``workdir/nginx/hls``."""
    if not NGINX_MODULE.exists():
        sys.exit(f"{NGINX_MODULE} is missing: apt-get install nginx libnginx-mod-rtmp")
    prefix = workdir / "nginx"
    hls = prefix / "hls"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    hls.mkdir(exist_ok=True)
    for folder in (workdir, prefix, hls):
        folder.chmod(0o777)  # the worker runs as nobody when nginx starts as root
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(f"""\
load_module {NGINX_MODULE};
worker_processes 1;
error_log {prefix}/logs/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;
            hls on;
            hls_path {hls};
            hls_fragment 2s;
        }}
    }}
}}
""")
    proc = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CPU), "nginx", "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def listening() -> bool:
        with contextlib.closing(__import__("socket").create_connection(("127.0.0.1", port), 1)):
            return True

    wait_for("nginx listening", listening, 20, proc)

    def check() -> dict[str, Any]:
        segments = [len(list(hls.glob(f"cam{n}-*.ts"))) for n in range(publishers)]
        playlists = sum((hls / f"cam{n}.m3u8").exists() for n in range(publishers))
        return {
            "playlists": playlists,
            "segments_min": min(segments),
            "segments_total": sum(segments),
            "ok": playlists == publishers and min(segments) >= 1,
        }

    return Server("nginx", proc, [f"rtmp://127.0.0.1:{port}/live/cam{n}" for n in range(publishers)], check)


def http_json(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
        return json.loads(response.read() or b"null")


@dataclass(slots=True)
class Window:
    server: str
    seconds: float
    cpu_seconds: float
    publishers: int
    publisher_cpu_seconds: float
    check: dict[str, Any]

    @property
    def per_publisher_pct(self) -> float:
        return self.cpu_seconds / self.seconds / self.publishers * 100


def measure(server: Server, source: Path, options: Options, log: IO[str]) -> Window:
    """``options.publishers`` ffmpeg publishers into ``server``; its CPU over the window."""
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    command = ["taskset", "-c", str(CLIENT_CPU), ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
               "-stream_loop", "-1", "-i", str(source), "-c", "copy", "-f", "flv"]  # fmt: skip
    publishers = [
        subprocess.Popen(
            [*command, url],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for url in server.urls[: options.publishers]
    ]
    profiler = None
    try:
        time.sleep(options.warmup)
        if options.profile and server.name == "forumcast":
            profiler = start_profiler(server.proc.pid, options.window, options.workdir)
        started, ticks = time.monotonic(), tree_ticks(server.proc.pid)
        feeding = sum(tree_ticks(p.pid) for p in publishers)
        time.sleep(options.window)
        ticks, seconds = tree_ticks(server.proc.pid) - ticks, time.monotonic() - started
        feeding = sum(tree_ticks(p.pid) for p in publishers) - feeding
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode} during the window")
        check = server.check()
        running = sum(p.poll() is None for p in publishers)
        check["publishers_running"] = running
        check["ok"] = check["ok"] and running == len(publishers)
        if profiler is not None:
            check["profile"] = finish_profiler(*profiler)
        return Window(server.name, seconds, ticks / CLK_TCK, len(publishers), feeding / CLK_TCK, check)
    finally:
        for proc in publishers:
            stop(proc)
        if profiler is not None:
            stop(profiler[0])


def idle_cpu(server: Server, seconds: float = 5.0) -> float:
    """CPU % of one core the server uses with no publisher."""
    started, ticks = time.monotonic(), tree_ticks(server.proc.pid)
    time.sleep(seconds)
    return (tree_ticks(server.proc.pid) - ticks) / CLK_TCK / (time.monotonic() - started) * 100


def start_profiler(pid: int, seconds: float, workdir: Path) -> tuple[subprocess.Popen[bytes], Path] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed (pip install py-spy): no profile", file=sys.stderr)
        return None
    output = workdir / "profile-forumcast.txt"
    proc = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds) - 1)), "--rate", "500",
         "--gil", "--nonblocking", "--format", "raw", "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    return proc, output


def finish_profiler(proc: subprocess.Popen[bytes], output: Path) -> dict[str, Any] | None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    return summarise_profile(output, top=25) if output.exists() else None


# --- latency: the publishers and the viewers ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tag:
    kind: int  # TagKind value: 8 audio, 9 video
    timestamp: int  # ms
    payload: bytes
    frame: bool  # a coded video frame (not a sequence header)


def clip_tags(path: Path, seconds: float) -> list[Tag]:
    """The clip's audio and video tags, looped (times continued) for ``seconds``; sequence
    headers only at the start, end-of-sequence markers left out."""
    from server.media.flv import FlvReader, PacketType, TagKind, parse_video

    tags = [t for t in FlvReader().feed(path.read_bytes()) if t.kind is not TagKind.SCRIPT]
    kinds = [parse_video(t.payload).packet if t.kind is TagKind.VIDEO else None for t in tags]
    frames = [t.timestamp for t, k in zip(tags, kinds, strict=True) if k is PacketType.CODED_FRAMES]
    # The next loop's first frame one frame interval after this loop's last: the video
    # cadence never breaks (the audio of a loop's start overlaps the end's by a few ms,
    # which the remuxer's sample count absorbs).
    period = frames[-1] + (frames[-1] - frames[-2]) - frames[0]
    out: list[Tag] = []
    loop = 0
    while True:
        for tag, packet in zip(tags, kinds, strict=True):
            config = packet is PacketType.SEQUENCE_START or (
                tag.kind is TagKind.AUDIO and len(tag.payload) > 1 and tag.payload[1] == 0
            )
            if packet is PacketType.SEQUENCE_END or (config and loop > 0):
                continue
            at = tag.timestamp + loop * period
            if at > seconds * 1000:
                return out
            out.append(Tag(int(tag.kind), at, tag.payload, packet is PacketType.CODED_FRAMES))
        loop += 1


async def sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def rtmp_publish(port: int, tags: Sequence[Tag], start: float) -> dict[int, float]:
    """Publish ``tags`` to :data:`RTMP_INPUT` paced from wall time ``start``; FLV ms of each
    video frame -> the wall time its tag was written."""
    from server.media.rtmp import amf0
    from server.media.rtmp import messages as m
    from server.media.rtmp.chunks import ChunkReader, ChunkWriter
    from server.media.rtmp.handshake import PACKET_SIZE

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x03" + bytes(PACKET_SIZE))
    answer = await reader.readexactly(1 + 2 * PACKET_SIZE)
    writer.write(answer[1 : 1 + PACKET_SIZE])  # C2 echoes S1
    chunks, replies = ChunkWriter(), ChunkReader()
    writer.write(chunks.write(m.set_chunk_size(4096), m.CONTROL_CHUNK_STREAM))
    chunks.set_chunk_size(4096)
    name = f"{RTMP_INPUT}?key={input_key(RTMP_INPUT)}"
    tc_url = f"rtmp://127.0.0.1:{port}/live"
    commands: list[tuple[str, list[Any], int]] = [
        ("connect", [{"app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": tc_url}], 0),
        ("releaseStream", [None, name], 0),
        ("FCPublish", [None, name], 0),
        ("createStream", [None], 0),
        ("publish", [None, name, "live"], 1),
    ]
    for txn, (command, args, stream) in enumerate(commands, 1):
        payload = amf0.encode(command, float(txn), *args)
        writer.write(chunks.write(m.Message(m.COMMAND_AMF0, stream, 0, payload), 3 if stream == 0 else 4))
    async with asyncio.timeout(10):
        started = False
        while not started:
            for message in replies.feed(await reader.read(65536)):
                if message.type_id == m.COMMAND_AMF0:
                    values = amf0.decode(message.payload)
                    if values[0] == "onStatus":
                        if values[3].get("code") != "NetStream.Publish.Start":
                            raise RuntimeError(f"RTMP publish refused: {values[3]}")
                        started = True
    drain = asyncio.ensure_future(_discard(reader))
    sent: dict[int, float] = {}
    try:
        for tag in tags:
            await sleep_until(start + tag.timestamp / 1000)
            writer.write(
                chunks.write(m.Message(tag.kind, 1, tag.timestamp, tag.payload), 6 if tag.kind == 9 else 4)
            )
            if tag.frame:
                sent[tag.timestamp] = time.time()
            if writer.transport.get_write_buffer_size() > 2**20:
                await writer.drain()
    finally:
        drain.cancel()
        writer.close()
    return sent


async def _discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def ws_publish(session: Any, base: str, tags: Sequence[Tag], start: float) -> dict[int, float]:
    """The same tags as 200 ms fMP4 fragments to :data:`WS_INPUT`, each sent when its last
    frame's time is reached; FLV ms of each video frame -> its send time."""
    from server.media.flv import TagKind
    from server.media.flv_remux import Remuxer
    from server.media.types import InitSegment

    remuxer = Remuxer(fragment_ms=FRAGMENT_MS)
    items = [item for tag in tags for item in remuxer.feed(TagKind(tag.kind), tag.timestamp, tag.payload)]
    url = f"{base.replace('http', 'ws', 1)}/ws/publish/{WS_INPUT}?key={input_key(WS_INPUT)}"
    sent: dict[int, float] = {}
    async with session.ws_connect(url) as ws:
        drain = asyncio.ensure_future(_discard_ws(ws))
        try:
            for item in items:
                if isinstance(item, InitSegment):
                    await ws.send_bytes(item.data)
                    continue
                frames = video_frames_ms(item, remuxer.init)
                await sleep_until(start + frames[-1] / 1000)
                await ws.send_bytes(item.data)
                sent.update({ms: start + ms / 1000 for ms in frames[:-1]})
                sent[frames[-1]] = time.time()
        finally:
            drain.cancel()
    return sent


async def _discard_ws(ws: Any) -> None:
    async for _ in ws:
        pass


def video_frames_ms(fragment: Any, init: Any) -> list[int]:
    """The times (ms, rounded) of a fragment's video samples: tfdt plus equal shares of its
    duration (the clip's frames are exactly 40 ms apart, checked by the caller's lookups)."""
    video = init.video
    traf = fragment.track(video.id) if video is not None else None
    if traf is None or traf.sample_count == 0:
        return []
    step = traf.duration / traf.sample_count
    return [
        round((traf.base_decode_time + i * step) * 1000 / video.timescale) for i in range(traf.sample_count)
    ]


@dataclass(slots=True)
class Arrivals:
    fragments: list[tuple[float, list[int]]] = field(default_factory=list)  # (wall time, frame ms)


async def watch(
    session: Any, base: str, token: str, input_id: str, arrivals: Arrivals, ready: asyncio.Event
) -> None:
    from server.media.fmp4 import Fmp4Parser
    from server.media.types import MediaFragment

    parser = Fmp4Parser()
    headers = {"Authorization": f"Bearer {token}"}
    async with session.ws_connect(f"{base}/ws/watch/input/{input_id}", headers=headers, max_msg_size=0) as ws:
        ready.set()
        async for message in ws:
            at = time.time()
            if message.type.name != "BINARY":
                continue
            for item in parser.feed(message.data):
                if isinstance(item, MediaFragment):
                    arrivals.fragments.append((at, video_frames_ms(item, parser.init)))


@dataclass(frozen=True, slots=True)
class Latency:
    last: list[float]  # ms, the last frame of each fragment
    every: list[float]  # ms, every frame
    unmatched: int


def latencies(sent: dict[int, float], arrivals: Arrivals, skip_ms: float) -> Latency:
    first_sent = min(sent)
    first_seen = next(frames[0] for _, frames in arrivals.fragments if frames)
    shift = first_seen - first_sent  # where the preview's timeline put the first frame
    last: list[float] = []
    every: list[float] = []
    unmatched = 0
    for at, frames in arrivals.fragments:
        times = [ms - shift for ms in frames]
        if not times or times[0] < first_sent + skip_ms:
            continue
        for ms in times:
            if ms not in sent:
                unmatched += 1
                continue
            every.append((at - sent[ms]) * 1000)
        if times[-1] in sent:
            last.append((at - sent[times[-1]]) * 1000)
    return Latency(last, every, unmatched)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def latency_run(
    base: str, rtmp_port: int, token: str, source: Path, options: Options
) -> dict[str, Any]:
    import aiohttp

    tags = clip_tags(source, options.window + options.warmup)
    arrivals = {RTMP_INPUT: Arrivals(), WS_INPUT: Arrivals()}
    async with aiohttp.ClientSession() as session:
        ready = {name: asyncio.Event() for name in arrivals}
        viewers = [
            asyncio.ensure_future(watch(session, base, token, name, arrivals[name], ready[name]))
            for name in arrivals
        ]
        try:
            async with asyncio.timeout(10):
                await asyncio.gather(*(event.wait() for event in ready.values()))
            start = time.time() + 0.5
            sent_rtmp, sent_ws = await asyncio.gather(
                rtmp_publish(rtmp_port, tags, start), ws_publish(session, base, tags, start + WS_OFFSET_S)
            )
            await asyncio.sleep(1.0)  # the last fragments in flight
        finally:
            for viewer in viewers:
                viewer.cancel()
    result: dict[str, Any] = {}
    for name, sent in ((RTMP_INPUT, sent_rtmp), (WS_INPUT, sent_ws)):
        found = latencies(sent, arrivals[name], options.warmup * 1000)
        result[name] = {
            "fragments": len(found.last),
            "frames": len(found.every),
            "unmatched": found.unmatched,
            **{
                f"{which}_{label}": round(percentile(values, q), 1)
                for which, values in (("last", found.last), ("all", found.every))
                for label, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
            },
        }
    result["added_p99_last_ms"] = round(result[RTMP_INPUT]["last_p99"] - result[WS_INPUT]["last_p99"], 1)
    result["added_p99_all_ms"] = round(result[RTMP_INPUT]["all_p99"] - result[WS_INPUT]["all_p99"], 1)
    return result


# --- the run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Options:
    publishers: int
    window: float
    warmup: float
    rounds: int
    profile: bool
    latency: bool
    workdir: Path = Path()


def run(options: Options) -> dict[str, Any]:
    source = clip()
    os.sched_setaffinity(0, {CLIENT_CPU})  # this process publishes and watches in the latency run
    names = ("forumcast", "nginx", "forumcast-latency", "publishers")
    logs = {name: (options.workdir / f"{name}.log").open("w") for name in names}
    forumcast = nginx = None
    try:
        forumcast = start_forumcast(options.workdir, options.publishers, logs["forumcast"])[0]
        nginx = start_nginx(options.workdir, options.publishers, logs["nginx"])
        time.sleep(SETTLE_S)  # forumcast's start (the stages' slates) is not what we measure
        idle = {server.name: idle_cpu(server) for server in (forumcast, nginx)}
        windows: list[Window] = []
        for server in [forumcast, nginx, nginx, forumcast][: 2 * options.rounds]:
            span = f"{options.warmup:g} + {options.window:g} s"
            note(f"== {server.name}: {options.publishers} publishers, {span}")
            window = measure(server, source, options, logs["publishers"])
            note(f"   {window.per_publisher_pct:.2f} % per publisher; {window.check}")
            windows.append(window)
            time.sleep(2.0)  # inputs go down, programs fail over to the slate
        stop(nginx.proc)
        stop(forumcast.proc, 15)
        latency = None
        if options.latency:
            note(f"== latency: RTMP and WebSocket previews, {options.warmup:g} + {options.window:g} s")
            forumcast, base, rtmp_port, token = start_forumcast(
                options.workdir, 0, logs["forumcast-latency"], latency=True
            )
            time.sleep(SETTLE_S)
            latency = asyncio.run(latency_run(base, rtmp_port, token, source, options))
        return {"idle_pct": idle, "windows": windows, "latency": latency}
    finally:
        stop(nginx.proc if nginx else None)
        stop(forumcast.proc if forumcast else None, 15)
        for log in logs.values():
            log.close()


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cpu_table(result: dict[str, Any]) -> tuple[str, float]:
    """The windows as Markdown, and forumcast's CPU per publisher over nginx-rtmp's."""
    windows: list[Window] = result["windows"]

    def per(name: str) -> float:
        chosen = [w for w in windows if w.server == name]
        seconds = sum(w.seconds for w in chosen)
        return sum(w.cpu_seconds for w in chosen) / seconds / chosen[0].publishers * 100

    def checks(w: Window) -> str:
        shown = ", ".join(f"{k} {v}" for k, v in w.check.items() if k not in ("ok", "profile"))
        return shown + ("" if w.check["ok"] else " **NOT OK**")

    lines = [
        [w.server, w.publishers, f"{w.seconds:.1f}", f"{w.cpu_seconds:.2f}", f"{w.per_publisher_pct:.2f}",
         f"{w.cpu_seconds / w.seconds * 100:.1f}", f"{w.publisher_cpu_seconds / w.seconds * 100:.1f}",
         checks(w)]
        for w in windows
    ]  # fmt: skip
    header = "server | publishers | window s | CPU s | CPU % / publisher | CPU % | publishers' CPU % | checks"
    return markdown(header, "lrrrrrrl", lines), per("forumcast") / per("nginx")


def latency_table(latency: dict[str, Any]) -> str:
    def cells(data: dict[str, Any], which: str) -> str:
        return " / ".join(str(data[f"{which}_{q}"]) for q in ("p50", "p99", "max"))

    paths = (("RTMP → preview", latency[RTMP_INPUT]), ("WebSocket → preview", latency[WS_INPUT]))
    lines = [
        [path, d["fragments"], d["frames"], cells(d, "last"), cells(d, "all"), d["unmatched"]]
        for path, d in paths
    ]
    header = "publisher | fragments | frames | last frame p50 / p99 / max ms | all frames p50 / p99 / max ms"
    return markdown(header + " | unmatched", "lrrrrr", lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="RTMP ingest benchmark (see the module docstring)")
    parser.add_argument("--publishers", type=int, default=20, help="publishers per server (20)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured per window (30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before each window (5)")
    parser.add_argument(
        "--rounds", type=int, default=1, choices=(1, 2), help="2: forumcast nginx nginx forumcast"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy forumcast during its windows")
    parser.add_argument("--no-latency", dest="latency", action="store_false", help="CPU only")
    parser.add_argument("--json-out", type=Path, help="write every figure here as JSON")
    parser.add_argument("--keep", type=Path, help="keep logs, HLS output and profiles in this folder")
    args = parser.parse_args(argv)
    if not 1 <= args.publishers <= MAX_PUBLISHERS:
        parser.error(f"--publishers must be 1..{MAX_PUBLISHERS}")
    if not 5 <= args.window <= MAX_WINDOW or not 1 <= args.warmup <= 60:
        parser.error(f"--window must be 5..{MAX_WINDOW:g} and --warmup 1..60")
    options = Options(args.publishers, args.window, args.warmup, args.rounds, args.profile, args.latency)
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            options.workdir = args.keep
        else:
            options.workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="forumcast-rtmp-")))
        result = run(options)
    table, ratio = cpu_table(result)
    print(f"\n{machine_line()}, commit {revision()}")
    print("idle CPU % (no publisher): " + ", ".join(f"{k} {v:.2f}" for k, v in result["idle_pct"].items()))
    print(f"\n{table}\n")
    verdict = "met" if ratio <= CPU_TARGET else "MISSED"
    print(f"CPU per publisher, forumcast / nginx-rtmp: {ratio:.2f}x (target <= {CPU_TARGET:g}x: {verdict})")
    for window in result["windows"]:
        profile = window.check.get("profile")
        if profile:
            print(f"\nforumcast profile ({profile['samples']} samples, {profile['file']}), self %:")
            print("\n".join(f"  {share:5.1f}  {name}" for name, share in profile["self"]))
            print("inclusive %:")
            print("\n".join(f"  {share:5.1f}  {name}" for name, share in profile["inclusive"]))
    latency = result["latency"]
    if latency is not None:
        print(f"\n{latency_table(latency)}\n")
        added = latency["added_p99_last_ms"]
        verdict = "met" if added <= LATENCY_TARGET_MS else "MISSED"
        print(
            f"added p99, RTMP - WebSocket: last frame {added} ms (target <= {LATENCY_TARGET_MS:g} ms:"
            f" {verdict}), all frames {latency['added_p99_all_ms']} ms"
        )
    if args.json_out is not None:
        windows = [
            {**dataclasses.asdict(w), "per_publisher_pct": w.per_publisher_pct} for w in result["windows"]
        ]
        args.json_out.write_text(
            json.dumps({"machine": machine_line(), "commit": revision(), **result, "windows": windows,
                        "cpu_ratio": ratio}, indent=2, default=str)
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
