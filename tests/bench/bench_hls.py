"""LL-HLS benchmark: glass-to-glass delay in hls.js, and serving cost at 1,000 players against nginx.

Run on demand from the repository root (pytest does not collect ``tests/bench``)::

    apt-get install -y nginx wrk        # once; the script says so if either is missing
    .venv/bin/python tests/bench/bench_hls.py --repeat 2      # defaults: 60 s of delay samples, 1,000 players
    .venv/bin/python tests/bench/bench_hls.py --skip-delay --profile    # + py-spy of the server

**Glass-to-glass** (``--delay-seconds``; ``--skip-delay`` leaves it out): ``forumcast serve``
(stage ``main`` fed by input ``main-cam``, on air by the schedule) and bench_relay's publisher
child: the live test pattern (640x360, 25 fps, a keyframe every second, 1 Mbps + AAC, 200 ms
fragments), which paints the wall clock into every frame and stamps each fragment's ``prft``
with the moment its first frame entered the encoder (the server dates segments from it).
Headless Chromium (``/usr/bin/chromium``, never
downloaded) opens a page of the benchmark's own at the server's origin (Playwright serves it
and hls.js, so only the server's HLS URLs reach the server) that plays
``/live/main/index.m3u8`` with hls.js in low-latency mode, configured like
``clients/web/hls-player.js``. Once it plays, and after ``--warmup`` seconds, every 500 ms for
``--delay-seconds`` it takes

- the **burned-in clock**: the frame on screen is drawn into a canvas and the clock's 5x7
  glyphs read back (:mod:`server.encoding.picture` draws them at 8 px per dot, so compression cannot
  blur them): ``Date.now() − clock`` is the delay from the camera (the painter) to the
  screen, whatever the player believes;
- ``Date.now() − hls.playingDate`` (the program date time at the playhead), which is the
  same delay if the playlist's dates are capture times (their difference is reported), and
  hls.js's own ``latency`` and ``targetLatency``;

and reports p50/p99 (nearest rank) against the target of 2 s, with stalls (``waiting``
events), playback rate, dropped frames and hls.js errors over the sampling.

**Serving** (``--players``, ``--duration``; ``--skip-load`` leaves it out): a fresh server
pinned to core 0, the live publisher and the load generator on core 1 (``--no-pin``: the
scheduler places them). The load generator is a child process of lean HTTP/1.1 players (an
asyncio protocol each, one keep-alive connection each, as a player has): each fetches the
multivariant and the media playlist, then loops like an LL-HLS client at the live edge: a
blocking reload for the part after the newest it knows (``_HLS_msn=N&_HLS_part=M+1``),
then every part from the last one it has up to the newest listed, in order (a part gone
from the window sends it back to the edge, counted as an error). They join at ``--ramp``
per second; the steady phase runs from 3 s after the last one joined to the end. Measured
there: requests/s (playlists and parts); the server's CPU from ``/proc/PID/stat`` (the
kernel's loopback TCP work in its context included), so requests/s per server core
(requests/s ÷ the share of a core it used), and, when pinned, how busy its core was
whatever ran there (``/proc/stat``: a busier core than the server's CPU says other work
shared it). And whether players kept up: parts per second each (5
at the live edge), the *fan-out* (a player has a part − the first player in the process saw
it listed), how long blocking reloads were held, and *fragment sent → part at the player*:
from the publisher handing the fragment to its socket (bench_relay's sent log) to a player
having the part, i.e. what ingest, packaging, the blocking wake-up and serving add.

Then the **reference**: a media playlist (as a player gets it) and the newest ten parts are
saved to disk, and ``wrk -t1 -c<players>`` with a Lua script that alternates the playlist
and a part (the same URLs, query included, cycling through the parts) runs against nginx
(one worker, pinned to core 0, sendfile, no access log, the same content types and
``Cache-Control``) and, like for like, against forumcast itself (no blocking: the same
non-blocking requests; the files are saved anew before each forumcast run, as parts leave
its window after about 12 s); then both again with parts only (what serving media costs
without playlists). ``--repeat N``: the best of N runs per wrk case. The primary figure is
forumcast's requests/s per core with players over nginx's per core with the same mix
(target ≥ 0.5).

Caveats, printed with the tables: nginx cannot hold a request, so its figure is a closed
loop at saturation from a static file, while forumcast's players are paced by the parts (a
server that keeps up idles between them); forumcast renders each playlist per request (each
carries the player's ``sid``) and wakes every held request at each new part; forumcast's
playlist requests are blocking ones with players and plain ones with wrk; the players are
Python (their CPU is reported: a saturated load generator bounds the figure), wrk is C and
on a 2-core machine shares its core with the publisher. Per-core figures divide by the CPU
each server used, not by what was free; on a shared machine other work on the servers' core
counts against them (``--repeat`` keeps the best wrk run).

Everything is bounded (``--delay-seconds`` ≤ 300, ``--duration`` ≤ 120, ``--wrk-duration`` ≤ 10,
the whole run cut at 600 s), loopback only, and every process started is stopped (terminated,
then killed) whatever happens. ``--json-out FILE`` keeps every figure, ``--keep DIR`` the logs,
the saved files and the profile.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import dataclasses
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
# tests/ is no package: the other benchmarks are imported by the names mypy gives them.
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "bench"), str(ROOT / "tests" / "live")]

import bench_relay as relay  # noqa: E402
import bench_serving as serving  # noqa: E402
from bench_program import markdown, revision, stats  # noqa: E402
from bench_relay import INPUT, SECRET, STAGE  # noqa: E402

from server.auth import Tokens  # noqa: E402
from server.encoding.picture import FONT, GLYPH_HEIGHT, GLYPH_WIDTH, PatternPainter, text_mask  # noqa: E402

EVENT_YAML = relay.event_yaml("LL-HLS benchmark")
WIDTH, HEIGHT = 640, 360  # bench_relay's publisher: PatternSettings' default picture
CLOCK = "00:00:00.000"  # the burned-in clock's layout (HH:MM:SS.mmm, UTC)
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
]
VENDORED_HLS = ROOT / "clients" / "web" / "vendor" / "hls"
#: clients/web/hls-player.js's configuration of hls.js.
HLS_CONFIG = {
    "lowLatencyMode": True,
    "enableWorker": False,
    "backBufferLength": 30,
    "liveDurationInfinity": True,
    "maxLiveSyncPlaybackRate": 1.05,
}
DELAY_TARGET_MS, RATIO_TARGET = 2000.0, 0.5
PARTS_PER_SECOND = 5  # 200 ms parts
SETTLE_S = 3.0  # after the last player joined, before the steady phase
SAMPLE_EVERY = 0.5
SAVED_PARTS = 10
SERVER_CORE = 0  # with pinning: the servers' core (everything else runs on core 1)
GRACE_S = 1.0  # players go on this long after the steady phase, so that none stops mid-part
HARD_LIMIT, MAX_ESTIMATE = 600.0, 570.0
INSTALL = "apt-get install -y nginx wrk"


# --- a stage on air -------------------------------------------------------------------------------


@dataclass(slots=True)
class OnAir:
    base: str
    server: subprocess.Popen[bytes]
    publisher: subprocess.Popen[bytes]
    sent_log: Path  # the publisher's: NTP of each fragment's prft, and when it went to the socket


def pin(cpu: int | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def newest(text: str) -> tuple[int, int, int]:
    """(msn, part index) of the newest part a media playlist lists, and the number of the
    part its preload hint names (the newest part's number + 1)."""
    at = text.find("#EXT-X-MEDIA-SEQUENCE:")
    sequence = int(text[at + 22 : text.find("\n", at)])
    last = text.rfind("#EXTINF")
    index = text.count("#EXT-X-PART:", max(last, 0)) - 1
    hint = text.rfind("/part/", text.rfind("#EXT-X-PRELOAD-HINT"))
    return sequence + text.count("#EXTINF"), index, int(text[hint + 6 : text.find(".m4s", hint)])


@contextlib.contextmanager
def stage_on_air(
    workdir: Path, tag: str, seconds: float, *, server_cpu: int | None, publisher_cpu: int | None
) -> Iterator[OnAir]:
    """The server and the live test pattern on air, until the media playlist lists two segments."""
    port = relay.free_port()
    base = f"http://127.0.0.1:{port}"
    event = workdir / "event.yaml"
    event.write_text(EVENT_YAML)
    env = {**os.environ, "FORUMCAST_SECRET": SECRET}
    env |= {"FORUMCAST_DEMO_INPUTS": "false", "FORUMCAST_DEMO_MODELS": "false"}
    env.pop("PYTHONASYNCIODEBUG", None)  # debug mode would slow every process down
    logs: dict[str, IO[str]] = {n: (workdir / f"{n}-{tag}.log").open("w") for n in ("server", "publisher")}
    server = publisher = None
    try:
        server = relay.start_server(event, port, workdir, env, logs["server"], cpu=server_cpu)
        relay.wait_for("server health", lambda: relay.http_get(f"{base}/healthz"), 30, server)
        key = Tokens(SECRET).stream_key(INPUT)
        sent_log = workdir / f"sent-{tag}.log"
        sent_log.unlink(missing_ok=True)
        publisher = subprocess.Popen(
            [*pin(publisher_cpu), sys.executable, relay.__file__, "_publish", base, key,
             str(sent_log), str(seconds + 60)],
            cwd=ROOT, env=env, stdout=logs["publisher"], stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        playlist = f"{base}/live/{STAGE}/media.m3u8?sid=bench-wait"
        relay.wait_for("two segments", lambda: relay.http_get(playlist).count("#EXTINF") >= 2, 40, server)
        yield OnAir(base, server, publisher, sent_log)
    finally:
        relay.stop(publisher)
        relay.stop(server, 15)
        for log in logs.values():
            log.close()


# --- glass-to-glass in hls.js ---------------------------------------------------------------------------

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>LL-HLS delay</title>
<body style="margin:0;background:#000">
<video id="video" muted autoplay playsinline width="%(width)d" height="%(height)d"></video>
<script type="module">
import Hls from "./hls.mjs";
const GEOMETRY = %(geometry)s;
const video = document.getElementById("video");
const state = { waiting: 0, errors: [], playing: false };
const hls = new Hls(%(config)s);
video.addEventListener("waiting", () => { state.waiting += 1; });
video.addEventListener("playing", () => { state.playing = true; });
hls.on(Hls.Events.ERROR, (_event, data) => {
  state.errors.push(`${data.fatal ? "fatal " : ""}${data.type}: ${data.details}`);
});
hls.on(Hls.Events.MANIFEST_PARSED, () => {
  video.play().catch((error) => state.errors.push(`play(): ${error}`));
});
hls.loadSource("/live/%(stage)s/index.m3u8");
hls.attachMedia(video);
const canvas = document.createElement("canvas");
const context = canvas.getContext("2d", { willReadFrequently: true });

// The clock's glyph dots of the frame on screen ("1" ink, "0" paper), and when it was read.
function clockDots() {
  const { x, y, scale, chars, columns, rows, advance } = GEOMETRY;
  if (video.readyState < 2 || !video.videoWidth) return [null, Date.now()];
  if (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight) {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
  }
  context.drawImage(video, 0, 0, canvas.width, canvas.height);
  const now = Date.now();
  const sx = canvas.width / GEOMETRY.width, sy = canvas.height / GEOMETRY.height;
  const image = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let dots = "";
  for (let c = 0; c < chars; c++) {
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < columns; k++) {
        const px = Math.floor((x + c * advance + k * scale + scale / 2) * sx);
        const py = Math.floor((y + r * scale + scale / 2) * sy);
        const i = (py * canvas.width + px) * 4;
        dots += image[i] + image[i + 1] + image[i + 2] > 384 ? "1" : "0";
      }
    }
  }
  return [dots, now];
}

window.benchSample = () => {
  const [dots, now] = clockDots();
  const playing = hls.playingDate;
  const quality = video.getVideoPlaybackQuality();
  return {
    now, dots,
    playing_date: playing ? playing.getTime() : null,
    latency: hls.latency, target_latency: hls.targetLatency,
    current_time: video.currentTime, paused: video.paused, rate: video.playbackRate,
    playing: state.playing, waiting: state.waiting, errors: state.errors.slice(),
    dropped: quality.droppedVideoFrames, frames: quality.totalVideoFrames,
    version: Hls.version,
  };
};
</script>
"""


def clock_geometry() -> dict[str, int]:
    """Where :class:`server.encoding.picture.PatternPainter` draws the clock in a 640x360 frame."""
    scale = PatternPainter("BENCH", WIDTH, HEIGHT).clock_scale
    height, width = text_mask(CLOCK, scale).shape
    return {
        "width": WIDTH, "height": HEIGHT, "scale": scale, "chars": len(CLOCK),
        "columns": GLYPH_WIDTH, "rows": GLYPH_HEIGHT, "advance": (GLYPH_WIDTH + 1) * scale,
        "x": (WIDTH - width) // 2, "y": (HEIGHT - height) // 2,
    }  # fmt: skip


def read_clock(dots: str | None) -> int | None:
    """Milliseconds since midnight (UTC) the glyph dots show, or None if any digit is unclear."""
    if dots is None:
        return None
    size = GLYPH_WIDTH * GLYPH_HEIGHT
    glyphs = {d: "".join("1" if v else "0" for v in FONT[d].flat) for d in "0123456789"}
    digits = []
    for index, char in enumerate(CLOCK):
        if char != "0":
            continue  # a separator
        cell = dots[index * size : (index + 1) * size]
        best = min(glyphs, key=lambda d: sum(a != b for a, b in zip(glyphs[d], cell, strict=True)))
        if sum(a != b for a, b in zip(glyphs[best], cell, strict=True)) > 3:
            return None
        digits.append(int(best))
    hh, mm, ss = (digits[i] * 10 + digits[i + 1] for i in (0, 2, 4))
    millis = digits[6] * 100 + digits[7] * 10 + digits[8]
    if hh > 23 or mm > 59 or ss > 59:
        return None
    return ((hh * 60 + mm) * 60 + ss) * 1000 + millis


def since_clock(now_ms: int, clock_ms: int) -> int:
    """``now − clock`` in ms, across midnight."""
    day = 86_400_000
    return (now_ms % day - clock_ms + day // 2) % day - day // 2


def find_hls_js(wait: float, workdir: Path) -> tuple[Path, str]:
    """The vendored hls.js ES module (waiting up to ``wait`` s for it to appear), else the
    npm package installed into ``workdir``. Returns (file, where it came from)."""
    deadline = time.monotonic() + wait
    while True:
        for name in ("hls.light.min.mjs", "hls.min.mjs", "hls.mjs", "hls.light.mjs"):
            if (VENDORED_HLS / name).is_file():
                return VENDORED_HLS / name, f"vendored {VENDORED_HLS.relative_to(ROOT)}/{name}"
        if time.monotonic() >= deadline:
            break
        time.sleep(5.0)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"no hls.js in {VENDORED_HLS} and no npm to install it")
    folder = workdir / "hls.js-npm"
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder), "hls.js"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    dist = folder / "node_modules" / "hls.js" / "dist"
    version = json.loads((dist.parent / "package.json").read_text())["version"]
    return dist / "hls.mjs", f"npm hls.js {version}"


def measure_delay(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from playwright.sync_api import Route, sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    hls_file, hls_from = find_hls_js(options.wait_hls, workdir)
    page_html = PAGE % {
        "width": WIDTH,
        "height": HEIGHT,
        "geometry": json.dumps(clock_geometry()),
        "config": json.dumps(HLS_CONFIG),
        "stage": STAGE,
    }
    seconds = options.warmup + options.delay_seconds + 30
    samples: list[dict[str, Any]] = []
    with (
        stage_on_air(workdir, "delay", seconds, server_cpu=None, publisher_cpu=None) as air,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(f"uncaught: {e}"))

            def serve(route: Route) -> None:
                if route.request.url.endswith("/hls.mjs"):
                    route.fulfill(path=str(hls_file), content_type="text/javascript")
                else:
                    route.fulfill(body=page_html, content_type="text/html")

            page.route(f"{air.base}/__bench__/**", serve)
            page.goto(f"{air.base}/__bench__/hls.html")
            page.wait_for_function("window.benchSample && benchSample().current_time > 1", timeout=30_000)
            started = time.monotonic()
            print(f"   playing; {options.warmup:g} s warm-up ...", file=sys.stderr, flush=True)
            time.sleep(options.warmup)
            begin = page.evaluate("benchSample()")
            due = time.monotonic()
            while time.monotonic() - started < options.warmup + options.delay_seconds:
                due += SAMPLE_EVERY
                time.sleep(max(0.0, due - time.monotonic()))
                samples.append(page.evaluate("benchSample()"))
        finally:
            browser.close()
    return summarise_delay(begin, samples, console, hls_from)


def summarise_delay(
    begin: dict[str, Any], samples: list[dict[str, Any]], console: list[str], hls_from: str
) -> dict[str, Any]:
    clock, dated, skew, unread = [], [], [], 0
    for s in samples:
        shown = read_clock(s["dots"])
        if shown is None:
            unread += 1
        else:
            clock.append(since_clock(s["now"], shown))
        if s["playing_date"] is not None:
            dated.append(s["now"] - s["playing_date"])
            if shown is not None:  # what the playlist says the frame on screen was − what it shows
                skew.append(since_clock(s["playing_date"], shown))
    end = samples[-1] if samples else begin
    return {
        "hls_js": f"{hls_from} (hls.js {begin['version']})",
        "samples": len(samples),
        "clock_ms": stats(clock, 0),
        "program_date_time_ms": stats(dated, 0),
        "date_minus_clock_ms": stats(skew, 0),
        "hls_latency_ms": stats((s["latency"] * 1000 for s in samples if s["latency"] is not None), 0),
        "hls_target_latency_ms": stats(
            (s["target_latency"] * 1000 for s in samples if s["target_latency"] is not None), 0
        ),
        "unreadable_clock": unread,
        "stalls": end["waiting"] - begin["waiting"],
        "rates": sorted({round(s["rate"], 3) for s in samples}),
        "dropped_frames": end["dropped"] - begin["dropped"],
        "frames": end["frames"] - begin["frames"],
        "hls_errors": end["errors"][len(begin["errors"]) :],
        "console_errors": console[:20],
        "series": [
            {
                "now": s["now"],
                "clock": read_clock(s["dots"]),
                "playing_date": s["playing_date"],
                "latency": s["latency"],
                "current_time": s["current_time"],
                "rate": s["rate"],
            }
            for s in samples
        ],
    }


# --- the players (a child process) ----------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, ``Content-Length`` bodies only;
    a body that is not kept is only counted."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.body = bytearray()
        self.remaining = -1  # body bytes still to come; -1 while reading the head
        self.size = 0
        self.status = 0
        self.keep = True
        self.waiter: asyncio.Future[tuple[int, bytes, int]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.remaining < 0:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.head[:end]).lower()
            data = bytes(self.head[end + 4 :])
            self.head.clear()
            self.status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            stop = head.find(b"\r\n", at + 2)
            self.size = self.remaining = int(head[at + 17 : stop if stop >= 0 else None]) if at >= 0 else 0
            self.body = bytearray()
        if data:
            if self.keep:
                self.body += data[: self.remaining]
            self.remaining -= min(len(data), self.remaining)
        if self.remaining == 0:
            self.remaining = -1
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result((self.status, bytes(self.body), self.size))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError("the server closed the connection"))

    async def get(self, path: str, keep: bool = True) -> tuple[int, bytes, int]:
        """(status, body if kept, body size)."""
        assert self.transport is not None
        self.keep = keep
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        return await self.waiter


@dataclass(slots=True)
class Tally:
    """What the players did (in the steady phase unless said otherwise)."""

    steady_from: float = float("inf")
    steady_to: float = float("inf")
    requests: Counter[str] = field(default_factory=Counter)  # kind -> count
    per_second: Counter[str] = field(default_factory=Counter)  # "kind@unix second" -> count (whole run)
    bytes: Counter[str] = field(default_factory=Counter)
    held_ms: list[float] = field(default_factory=list)  # blocking reloads, request to answer
    fanout_ms: dict[int, list[float]] = field(default_factory=dict)  # part -> received − first seen
    parts_by_player: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # whole run
    joined: int = 0
    first_seen: dict[int, float] = field(default_factory=dict)  # part -> Unix time

    def count(self, kind: str, size: int, at: float) -> bool:
        self.per_second[f"{kind}@{int(at)}"] += 1
        if self.steady_from <= at <= self.steady_to:
            self.requests[kind] += 1
            self.bytes[kind] += size
            return True
        return False

    def learn(self, hint: int, at: float) -> None:
        """The parts before the preload hint ``hint`` are listed at ``at``: note those not seen before."""
        first = max(self.first_seen, default=hint - 2) + 1
        for number in range(max(first, hint - 20), hint):
            self.first_seen.setdefault(number, at)


async def _player(number: int, host: str, port: int, deadline: float, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: Connection(f"{host}:{port}"), host, port)
    try:
        status, body, _ = await conn.get(f"/live/{STAGE}/index.m3u8")
        if status != 200:
            tally.errors[f"index {status}"] += 1
            return
        media = f"/live/{STAGE}/" + next(
            ln for ln in body.decode().splitlines() if ln.startswith("media.m3u8")
        )
        query = media.split("?", 1)[1]
        status, body, _ = await conn.get(media)
        if status != 200:
            tally.errors[f"playlist {status}"] += 1
            return
        text = body.decode()
        msn, index, hint = newest(text)
        tally.learn(hint, time.time())
        epoch = text[text.rfind('URI="', 0, text.rfind("/part/")) + 5 : text.rfind("/part/")]
        prefix = f"/live/{STAGE}/{epoch}/part/"
        wanted = hint - 1  # start at the live edge
        tally.joined += 1
        while time.monotonic() < deadline:
            while wanted < hint:
                status, _, size = await conn.get(f"{prefix}{wanted}.m4s?{query}", keep=False)
                now = time.time()
                if status == 200:
                    if tally.count("part", size, now):
                        tally.parts_by_player[number] += 1
                        if (seen := tally.first_seen.get(wanted)) is not None:
                            tally.fanout_ms.setdefault(wanted, []).append(round((now - seen) * 1000, 1))
                    wanted += 1
                elif status == 404 and wanted < hint - 1:  # gone from the window: back to the edge
                    tally.errors["part gone (404): skipped to the edge"] += 1
                    wanted = hint - 1
                else:
                    tally.errors[f"part {status}"] += 1
                    wanted = hint
            asked = time.time()
            status, body, size = await conn.get(f"{media}&_HLS_msn={msn}&_HLS_part={index + 1}")
            now = time.time()
            if status == 200:
                text = body.decode()
                if tally.count("reload", size, now):
                    tally.held_ms.append((now - asked) * 1000)
                msn, index, hint = newest(text)
                if hint - 1 not in tally.first_seen:
                    tally.learn(hint, now)
            elif status == 503:  # nothing new within three target durations: ask again
                tally.errors["reload 503 (not yet)"] += 1
            else:
                tally.errors[f"reload {status}"] += 1
                await asyncio.sleep(0.2)
    finally:
        if conn.transport is not None:
            conn.transport.close()


async def _players_child(base: str, players: int, duration: float, ramp: float, out: Path) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, players + 256)), hard))
    host, port = base.removeprefix("http://").rsplit(":", 1)
    tally = Tally()
    started = time.time()
    deadline = time.monotonic() + duration + GRACE_S
    tasks = []
    for number in range(players):
        tasks.append(asyncio.create_task(_player(number, host, int(port), deadline, tally)))
        if number % 10 == 9:
            await asyncio.sleep(10 / ramp)
    while tally.joined + sum(t.done() for t in tasks) < players and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    ramp_done = time.time()
    tally.steady_from = ramp_done + SETTLE_S
    tally.steady_to = started + duration
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            tally.errors[f"player: {type(result).__name__}: {result}"[:120]] += 1
    steady = tally.steady_to - tally.steady_from
    rusage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "players": players,
        "joined": tally.joined,
        "started": started,
        "ramp_done": ramp_done,
        "steady_from": tally.steady_from,
        "steady_to": tally.steady_to,
        "steady_s": steady,
        "requests": dict(tally.requests),
        "bytes": dict(tally.bytes),
        "per_second": dict(tally.per_second),
        "held_ms": tally.held_ms,
        "first_seen": tally.first_seen,
        "fanout_ms": tally.fanout_ms,
        "parts_per_player_s": sorted(tally.parts_by_player.get(n, 0) / steady for n in range(players))
        if steady > 0
        else [],
        "errors": dict(tally.errors),
        "cpu_s": rusage.ru_utime + rusage.ru_stime,
    }
    out.write_text(json.dumps(report))
    return 0


# --- serving: players, then wrk against forumcast and nginx -----------------------------------------------


#: (time, busy ticks, all ticks) of one CPU.
CoreTicks = tuple[float, int, int]


def core_ticks(cpu: int) -> CoreTicks:
    """One CPU's line of /proc/stat: how busy the servers' core was, whatever ran there. (The
    server's own CPU already holds the softirq time of the loopback TCP it does: with the
    kernel's tick-based accounting a tick in softirq counts for the task it interrupted too,
    so adding the softirq column would count it twice.)"""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + values[4]  # idle + iowait
            return time.time(), sum(values) - idle, sum(values)
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def core_pct(ticks: list[CoreTicks]) -> float | None:
    """% of the time between the first and the last sample the core (or, with
    :func:`bench_relay.machine_ticks`, the machine) was busy."""
    if len(ticks) < 2 or ticks[-1][2] <= ticks[0][2]:
        return None
    return (ticks[-1][1] - ticks[0][1]) / (ticks[-1][2] - ticks[0][2]) * 100


def steady_cpu(samples: list[relay.Sample], begin: float, end: float) -> float | None:
    return relay.cpu_percent([s for s in samples if begin <= s.at <= end])


def added_latency(report: dict[str, Any], sent_log: Path) -> tuple[list[float], dict[str, Any]]:
    """Milliseconds from the publisher handing a fragment to its socket (bench_relay's sent log)
    to a player having the part made of it, for every part fetched in the steady phase.

    Parts are numbered in the order the program emitted them and, with one input on air after
    the slate, follow the publisher's fragments one for one at a constant offset: each part is
    matched to the last fragment sent before a player first saw it listed, and the offset most
    parts agree on is used for all (robust to a server that lists a part late)."""
    sent = [float(line.split()[1]) for line in sent_log.read_text().splitlines() if len(line.split()) == 2]
    first_seen = {int(n): at for n, at in report["first_seen"].items()}
    offsets: Counter[int] = Counter()
    for number, seen in first_seen.items():
        if (index := bisect.bisect_right(sent, seen) - 1) >= 0:
            offsets[index - number] += 1
    if not offsets:
        return [], {"matched_share": 0.0}
    offset, agree = offsets.most_common(1)[0]
    added: list[float] = []
    listed: list[float] = []
    for key, fanouts in report["fanout_ms"].items():
        number = int(key)
        index = number + offset
        if number in first_seen and 0 <= index < len(sent):
            listed.append((first_seen[number] - sent[index]) * 1000)
            added += [listed[-1] + f for f in fanouts]
    return added, {"matched_share": round(agree / len(first_seen), 3), "listed_ms": stats(listed, 0)}


def run_players(air: OnAir, options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The players against the server on air; server CPU over their steady phase."""
    before: list[relay.Sample] = []
    for _ in range(7):  # 3 s of the server with the publisher and no player
        if (s := relay.sample(air.server.pid)) is not None:
            before.append(s)
        time.sleep(SAMPLE_EVERY)
    out = workdir / "players.json"
    loader_cpu = 1 if options.pin else None
    with (workdir / "players.log").open("w") as log:
        loader = subprocess.Popen(
            [*pin(loader_cpu), sys.executable, __file__, "_players", air.base, str(options.players),
             str(options.duration), str(options.ramp), str(out)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        profiler = None
        try:
            if options.profile:
                ramp_s = options.players / options.ramp
                profile_options = relay.Options(options.duration, options.ramp, 0, True, None)
                profiler = relay.start_profiler(
                    air.server.pid, workdir, options.players, ramp_s, profile_options
                )
            samples: dict[str, list[relay.Sample]] = {"server": [], "loader": [], "publisher": []}
            machine: list[tuple[float, int, int]] = []
            core: list[CoreTicks] = []
            limit = time.monotonic() + options.duration + 60
            while loader.poll() is None:
                if time.monotonic() > limit:
                    raise RuntimeError("the players did not stop in time")
                for name, proc in (("server", air.server), ("loader", loader), ("publisher", air.publisher)):
                    if (s := relay.sample(proc.pid)) is not None:
                        samples[name].append(s)
                machine.append(relay.machine_ticks())
                core.append(core_ticks(SERVER_CORE))
                time.sleep(SAMPLE_EVERY)
            if loader.returncode != 0:
                raise RuntimeError(
                    f"the players exited with {loader.returncode}: see {workdir / 'players.log'}"
                )
            profile = relay.finish_profiler(profiler)
        finally:
            relay.stop(profiler.proc if profiler else None, 30)
            relay.stop(loader)
    report = json.loads(out.read_text())
    added, matching = added_latency(report, air.sent_log)
    steady_core = [c for c in core if report["steady_from"] <= c[0] <= report["steady_to"]]
    begin, end = report["steady_from"], report["steady_to"]
    requests = sum(report["requests"].values())
    seconds = report["steady_s"]
    server_cpu = steady_cpu(samples["server"], begin, end)
    return {
        "players": report["players"],
        "joined": report["joined"],
        "steady_s": round(seconds, 1),
        "requests_s": requests / seconds if seconds > 0 else None,
        "reloads_s": report["requests"].get("reload", 0) / seconds if seconds > 0 else None,
        "parts_s": report["requests"].get("part", 0) / seconds if seconds > 0 else None,
        "bytes_s": sum(report["bytes"].values()) / seconds if seconds > 0 else None,
        "playlist_bytes": report["bytes"].get("reload", 0) / max(1, report["requests"].get("reload", 0)),
        "part_bytes": report["bytes"].get("part", 0) / max(1, report["requests"].get("part", 0)),
        "server_cpu_pct": server_cpu,
        "server_idle_cpu_pct": relay.cpu_percent(before),
        "loader_cpu_pct": steady_cpu(samples["loader"], begin, end),
        "publisher_cpu_pct": steady_cpu(samples["publisher"], begin, end),
        "machine_busy_pct": core_pct([m for m in machine if begin <= m[0] <= end]),  # all cores
        "core_busy_pct": core_pct(steady_core) if options.pin else None,
        "held_ms": stats(report["held_ms"], 0),
        "added_ms": stats(added, 0),
        "sent_to_listed": matching,
        "fanout_ms": stats((f for fanouts in report["fanout_ms"].values() for f in fanouts), 0),
        "parts_per_player_s": stats(report["parts_per_player_s"], 2),
        "errors": report["errors"],
        "per_second": report["per_second"],
        "profile": profile,
    }


def save_files(base: str, folder: Path) -> list[str]:
    """A media playlist as a player gets it and its newest parts, on disk under ``folder`` at
    the paths of their URLs; returns the URLs' paths (with query): the playlist first."""
    index = relay.http_get(f"{base}/live/{STAGE}/index.m3u8?sid=bench-wrk")
    media = f"/live/{STAGE}/" + next(ln for ln in index.splitlines() if ln.startswith("media.m3u8"))
    text = relay.http_get(base + media)
    uris = [
        ln.split('URI="', 1)[1].split('"', 1)[0] for ln in text.splitlines() if ln.startswith("#EXT-X-PART:")
    ]
    paths = [media]
    for uri in uris[-SAVED_PARTS:]:
        path = f"/live/{STAGE}/{uri}"
        with urllib.request.urlopen(base + path, timeout=5) as response:
            body = response.read()
        target = folder / path.split("?", 1)[0].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        paths.append(path)
    target = folder / media.split("?", 1)[0].lstrip("/")
    target.write_text(text)
    return paths


WRK_SCRIPTS = {
    # A player's request mix: the media playlist and a part in turn, cycling through the parts.
    "mix": """\
local playlist = %(playlist)s
local parts = { %(parts)s }
local n = 0
request = function()
  n = n + 1
  if n %% 2 == 1 then
    return wrk.format("GET", playlist)
  end
  return wrk.format("GET", parts[(n / 2) %% #parts + 1])
end
""",
    # Parts alone: what serving media costs without the playlists.
    "parts": """\
local parts = { %(parts)s }
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", parts[n %% #parts + 1])
end
""",
}


def write_script(workdir: Path, case: str, paths: list[str]) -> Path:
    script = workdir / f"{case}.lua"
    values = {"playlist": lua_string(paths[0]), "parts": ", ".join(map(lua_string, paths[1:]))}
    script.write_text(WRK_SCRIPTS[case] % values)
    return script


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of printable ASCII is a valid Lua string


@dataclass(slots=True)
class WrkResult(serving.WrkLoad):
    core_busy_pct: float | None


def run_wrk(base: str, script: Path, pgid: int, options: argparse.Namespace) -> WrkResult:
    command = ["wrk", "-t1", f"-c{options.players}", f"-d{options.wrk_duration:g}s", "--latency",
               "--timeout", "5s", "-s", str(script), base]  # fmt: skip
    load, before_core, after_core = serving.measure_wrk(
        [*pin(1 if options.pin else None), *command],
        pgid,
        options.wrk_duration + 30,
        lambda: core_ticks(SERVER_CORE),
    )
    return WrkResult(
        **dataclasses.asdict(load), core_busy_pct=core_pct([before_core, after_core]) if options.pin else None
    )


NGINX_CONF = """\
{user}worker_processes 1;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
worker_rlimit_nofile 20000;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    open_file_cache max=1000 inactive=60s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ \\.m3u8$ {{ add_header Cache-Control "public, max-age=1" always; }}
        location ~ \\.m4s$ {{ add_header Cache-Control "public, max-age=31536000, immutable" always; }}
        location = /healthz {{ return 200 "ok"; }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(workdir: Path, root: Path, cpu: int | None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = relay.free_port()
    prefix = workdir / "nginx"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # nobody could not read a 0700 temp dir
    conf.write_text(NGINX_CONF.format(user=user, prefix=prefix, port=port, root=root))
    log = (prefix / "stderr.log").open("wb")
    proc = None
    try:
        proc = subprocess.Popen(
            [*pin(cpu), str(serving.nginx_binary()), "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        serving.wait_until_up(f"{base}/healthz", proc, "nginx")
        yield base, proc
    finally:
        serving.stop_group(proc)
        log.close()


def check_same(paths: list[str], forumcast: str, reference: str) -> None:
    """Both servers answer every URL of the mix with the same bytes and content type."""
    for path in paths:
        got = [serving.fetch(base + path) for base in (forumcast, reference)]
        if any(g.status != 200 for g in got) or (got[0].body != got[1].body and path != paths[0]):
            raise RuntimeError(f"{path}: forumcast {got[0].status}, nginx {got[1].status} (or bodies differ)")
        types = {g.headers.get("Content-Type", "").split(";")[0] for g in got}
        if len(types) != 1:
            raise RuntimeError(f"{path}: content types differ: {types}")


def best_wrk(base: str, pgid: int, case: str, options: argparse.Namespace, fresh: Any) -> WrkResult:
    """The best of ``--repeat`` wrk runs (other work on a shared machine only makes runs slower);
    ``fresh()`` gives the URL paths to use, saved anew before each run against forumcast (parts
    leave its window after about 12 s)."""
    runs = []
    for _ in range(options.repeat):
        script = write_script(options.workdir, case, fresh())
        runs.append(run_wrk(base, script, pgid, options))
        print(f"   {case}: {_wrk_line(runs[-1])}", file=sys.stderr, flush=True)
    return max(runs, key=lambda r: r.requests_s)


def measure_load(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    server_cpu = 0 if options.pin else None
    seconds = options.duration + 4 * options.repeat * (options.wrk_duration + 3) + 60
    files = workdir / "files"
    options.workdir = workdir
    with stage_on_air(
        workdir, "load", seconds, server_cpu=server_cpu, publisher_cpu=1 if options.pin else None
    ) as air:
        print(f"   {options.players} players, {options.duration:g} s ...", file=sys.stderr, flush=True)
        result["players"] = run_players(air, options, workdir)
        print(f"   {_players_line(result['players'])}", file=sys.stderr, flush=True)
        time.sleep(2.0)  # let the players' connections close
        print(f"   wrk -c{options.players} against forumcast (no blocking) ...", file=sys.stderr, flush=True)
        for case in WRK_SCRIPTS:
            result[f"forumcast_{case}"] = best_wrk(
                air.base, air.server.pid, case, options, lambda: save_files(air.base, files)
            )
        paths = save_files(air.base, files)  # the files nginx serves, checked against forumcast's
        with nginx(workdir, files, server_cpu) as (nginx_base, proc):
            check_same(paths, air.base, nginx_base)
            print(f"   wrk -c{options.players} against nginx ...", file=sys.stderr, flush=True)
            for case in WRK_SCRIPTS:
                result[f"nginx_{case}"] = best_wrk(nginx_base, proc.pid, case, options, lambda: paths)
    result["saved"] = {
        "playlist_bytes": (files / paths[0].split("?", 1)[0].lstrip("/")).stat().st_size,
        "part_bytes": [(files / p.split("?", 1)[0].lstrip("/")).stat().st_size for p in paths[1:]],
    }
    return result


# --- output -------------------------------------------------------------------------------------


def cell(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def per_core(requests_s: float | None, cpu_pct: float | None) -> float | None:
    if not requests_s or not cpu_pct:
        return None
    return requests_s / (cpu_pct / 100)


def delay_table(delay: dict[str, Any]) -> str:
    def row(name: str, figures: dict[str, Any], target: bool) -> list[Any]:
        met = figures["p99"] is not None and figures["p99"] <= DELAY_TARGET_MS
        return [
            name, figures["p50"], figures["p99"], figures["min"], figures["max"], figures["n"],
            f"≤ {DELAY_TARGET_MS:g} ms" if target else "", ("yes" if met else "**no**") if target else "",
        ]  # fmt: skip

    lines = [
        row("glass-to-glass: burned-in clock of the frame on screen", delay["clock_ms"], True),
        row("glass-to-glass: program date time at the playhead (`hls.playingDate`)",
            delay["program_date_time_ms"], True),
        row("`hls.playingDate` − the clock in the picture (how far the playlist's dates are off)",
            delay["date_minus_clock_ms"], False),
        row("hls.js `latency` (its own estimate, from the playlist's end)", delay["hls_latency_ms"], False),
        row("hls.js `targetLatency`", delay["hls_target_latency_ms"], False),
    ]  # fmt: skip
    table = markdown("measure | p50 ms | p99 ms | min ms | max ms | n | target | met?", "lrrrrrll", lines)
    notes = (
        f"\n\n{delay['hls_js']}, config {json.dumps(HLS_CONFIG)}; {delay['samples']} samples every"
        f" {SAMPLE_EVERY * 1000:g} ms; clock unreadable in {delay['unreadable_clock']}; stalls (`waiting`)"
        f" {delay['stalls']}; playback rates {delay['rates']}; dropped frames {delay['dropped_frames']}"
        f" of {delay['frames']}; hls.js errors: {'; '.join(delay['hls_errors']) or 'none'}; console"
        f" errors: {'; '.join(delay['console_errors']) or 'none'}."
    )
    return table + notes


def load_table(load: dict[str, Any], options: argparse.Namespace) -> str:
    p = load["players"]
    n = options.players

    def wrk_row(name: str, r: WrkResult) -> tuple[Any, ...]:
        mix = "½ / ½" if "parts only" not in name else "0 / all"
        latency = f"{cell(r.p50_ms, 1)} / {cell(r.p99_ms, 1)}"
        return (name, r.requests_s, mix, r.server_cpu_pct, r.core_busy_pct, r.bytes_s, latency,
                f"{cell(r.wrk_cpu_pct)} (wrk)")  # fmt: skip

    rows = [
        (f"forumcast, {n} LL-HLS players (blocking reload → part)", p["requests_s"],
         f"{cell(p['reloads_s'])} / {cell(p['parts_s'])}", p["server_cpu_pct"], p["core_busy_pct"],
         p["bytes_s"], "-", f"{cell(p['loader_cpu_pct'])} (Python)"),
        wrk_row(f"forumcast, wrk -c{n}, the same URLs, no blocking", load["forumcast_mix"]),
        wrk_row(f"nginx 1 worker, wrk -c{n}, the same files from disk", load["nginx_mix"]),
        wrk_row(f"forumcast, wrk -c{n}, parts only", load["forumcast_parts"]),
        wrk_row(f"nginx 1 worker, wrk -c{n}, parts only", load["nginx_parts"]),
    ]  # fmt: skip
    reference = {2: 2, 1: 2, 0: 2, 3: 4, 4: 4}  # the nginx row each row is compared with
    cores = [per_core(r[1], r[3]) for r in rows]
    lines = []
    for index, (name, requests_s, mix, cpu, busy, bytes_s, latency, loader) in enumerate(rows):
        nginx_core = cores[reference[index]]
        value = cores[index]
        ratio = "-" if value is None or not nginx_core else f"{value / nginx_core:.2f}"
        bold = "**" if index == 0 else ""
        lines.append([
            name, cell(requests_s), mix, cell(cpu), cell(busy),
            f"{bold}{cell(value)}{bold}", f"{bold}{ratio}{bold}", cell((bytes_s or 0) / 2**20, 1),
            latency, loader,
        ])  # fmt: skip
    table = markdown(
        "server, load | req/s | playlists / parts per s | server CPU % | its core busy % (anything)"
        f" | req/s per server core | vs nginx per core, same mix (target ≥ {RATIO_TARGET:g}) | MiB/s"
        " | wrk latency p50 / p99 ms | load generator CPU %",
        "lrrrrrrrrr",
        lines,
    )
    held, age, fan, rate = p["held_ms"], p["added_ms"], p["fanout_ms"], p["parts_per_player_s"]
    players = markdown(
        "players held | parts/s per player p50 / min (live: 5) | fragment sent → part at the player"
        " p50 / p99 / max ms | fan-out p50 / p99 ms | reload held p50 / p99 ms | playlist / part bytes"
        " | server CPU idle %"
        " | publisher CPU % | machine busy % | errors (whole run)",
        "rrrrrrrrrl",
        [[
            f"{p['joined']} / {p['players']}", f"{cell(rate['p50'], 2)} / {cell(rate['min'], 2)}",
            f"{cell(age['p50'])} / {cell(age['p99'])} / {cell(age['max'])}",
            f"{cell(fan['p50'])} / {cell(fan['p99'])}", f"{cell(held['p50'])} / {cell(held['p99'])}",
            f"{cell(p['playlist_bytes'])} / {cell(p['part_bytes'])}", cell(p["server_idle_cpu_pct"], 1),
            cell(p["publisher_cpu_pct"]), cell(p["machine_busy_pct"]),
            "; ".join(f"{k}: {v}" for k, v in p["errors"].items()) or "none",
        ]],
    )  # fmt: skip
    errors = [f"{key}: {r.errors}" for key, r in load.items() if isinstance(r, WrkResult) and r.errors]
    return table + "\n\n" + players + ("\n\nwrk reported errors: " + "; ".join(errors) if errors else "")


def caveats(options: argparse.Namespace, load: dict[str, Any]) -> str:
    where = (
        "servers pinned to core 0; the publisher, the players and wrk to core 1"
        if options.pin
        else "nothing pinned"
    )
    saved = load["saved"]
    return (
        f"{where}. Per core = req/s ÷ (server CPU % / 100), the server's CPU from /proc/PID/stat"
        " (all threads, the kernel's TCP work in its context included; nginx: master + worker); its"
        " core's busy time (/proc/stat) also counts other work there (a shared machine). nginx cannot"
        " hold a request: its rows are closed loops at saturation from static files; forumcast's"
        " players are paced by the parts (5 per second each), so a server that keeps up idles between"
        " parts and its per-core figure is extrapolated from the CPU it used. forumcast renders every"
        " playlist per request (each carries the player's `sid`) and wakes every held reload at each"
        " new part; with wrk its playlist requests do not block. The players are Python: if their"
        " core is saturated they, not the server, bound the rate; wrk shares core 1 with the"
        " publisher. The saved playlist is"
        f" {saved['playlist_bytes']:,} bytes, the parts {min(saved['part_bytes']):,}–"
        f"{max(saved['part_bytes']):,} bytes (1 Mbps video + 64 kbps AAC)."
    )


def command_line(options: argparse.Namespace) -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    words = [str(python), str(Path(__file__).resolve().relative_to(ROOT))]
    words += ["--delay-seconds", f"{options.delay_seconds:g}", "--warmup", f"{options.warmup:g}"]
    words += ["--players", str(options.players), "--duration", f"{options.duration:g}"]
    words += ["--ramp", f"{options.ramp:g}", "--wrk-duration", f"{options.wrk_duration:g}"]
    words += ["--repeat", str(options.repeat)]
    for flag, on in (("--skip-delay", options.skip_delay), ("--skip-load", options.skip_load),
                     ("--no-pin", not options.pin), ("--profile", options.profile)):  # fmt: skip
        words += [flag] if on else []
    words += ["--json-out", str(options.json_out)] if options.json_out is not None else []
    words += ["--keep", str(options.keep)] if options.keep is not None else []
    return shlex.join(words)


def _players_line(p: dict[str, Any]) -> str:
    lines = [
        f"{p['joined']}/{p['players']} players, {cell(p['requests_s'])} req/s, server CPU"
        f" {cell(p['server_cpu_pct'])} %, loader CPU {cell(p['loader_cpu_pct'])} %, fragment sent →"
        f" part at the player p50 {p['added_ms']['p50']} p99 {p['added_ms']['p99']} ms, errors"
        f" {p['errors'] or 'none'}"
    ]
    if profile := p.get("profile"):
        lines.append(f"   profile ({profile['samples']} samples, {profile['file']}), self %:")
        lines += [f"     {share:5.1f}  {name}" for name, share in profile["self"]]
        lines.append("   inclusive %:")
        lines += [f"     {share:5.1f}  {name}" for name, share in profile["inclusive"]]
    return "\n".join(lines)


def _wrk_line(r: WrkResult) -> str:
    return (
        f"{r.requests_s:,.0f} req/s, {r.bytes_s / 2**20:,.1f} MiB/s, p50 {r.p50_ms} ms, p99 {r.p99_ms} ms,"
        f" server CPU {r.server_cpu_pct:.0f} %, core busy {cell(r.core_busy_pct)} %, wrk CPU"
        f" {r.wrk_cpu_pct:.0f} %{', ' + r.errors if r.errors else ''}"
    )


def estimate(options: argparse.Namespace) -> float:
    total = 0.0
    if not options.skip_delay:
        total += 25 + options.warmup + options.delay_seconds
    if not options.skip_load:
        total += 25 + 3 + options.duration + 2 + 4 * options.repeat * (options.wrk_duration + 3) + 5
    return total


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_players"]:  # the load generator: _players BASE PLAYERS DURATION RAMP OUT
        base, players, duration, ramp, out = argv[1:6]
        return asyncio.run(_players_child(base, int(players), float(duration), float(ramp), Path(out)))
    parser = argparse.ArgumentParser(description="LL-HLS benchmark (see the module docstring)")
    parser.add_argument("--delay-seconds", type=float, default=60.0, help="seconds of delay samples (60)")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of playback before sampling (15)")
    parser.add_argument(
        "--wait-hls", type=float, default=0.0, help="wait this long for the vendored hls.js (0)"
    )
    parser.add_argument("--players", type=int, default=1000, help="simulated LL-HLS players (1000)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of player load (30)")
    parser.add_argument("--ramp", type=float, default=500.0, help="players joining per second (500)")
    parser.add_argument("--wrk-duration", type=float, default=8.0, help="seconds per wrk run (8, ≤ 10)")
    parser.add_argument("--repeat", type=int, default=1, help="wrk runs per case, the best counts (1)")
    parser.add_argument("--skip-delay", action="store_true", help="no glass-to-glass measurement")
    parser.add_argument("--skip-load", action="store_true", help="no serving measurement")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin to cores")
    parser.add_argument("--profile", action="store_true", help="py-spy the server while the players run")
    parser.add_argument("--json-out", type=Path, help="write every figure here as JSON")
    parser.add_argument("--keep", type=Path, help="keep logs, saved files and profiles in this folder")
    args = parser.parse_args(argv)
    if not 10 <= args.delay_seconds <= 300 or not 0 <= args.warmup <= 60 or not 0 <= args.wait_hls <= 1800:
        parser.error("--delay-seconds must be 10..300, --warmup 0..60, --wait-hls 0..1800")
    if not 1 <= args.players <= 5000 or not 10 <= args.duration <= 120 or args.ramp <= 0:
        parser.error("--players must be 1..5000, --duration 10..120, --ramp positive")
    if not 2 <= args.wrk_duration <= 10:  # the saved parts must stay in the server's window
        parser.error("--wrk-duration must be 2..10")
    if not 1 <= args.repeat <= 3:
        parser.error("--repeat must be 1..3")
    if not args.skip_load:
        missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
        missing += [] if serving.nginx_binary().exists() else ["nginx"]
        if missing:
            print(f"missing: {', '.join(missing)}; install with: {INSTALL}", file=sys.stderr)
            return 2
    if args.pin and (os.cpu_count() or 1) < 2:
        args.pin = False
    if (seconds := estimate(args)) + args.wait_hls > MAX_ESTIMATE:
        parser.error(f"that would take about {seconds:.0f} s; at most {MAX_ESTIMATE:g} s")
    print(f"estimated {seconds:.0f} s", file=sys.stderr, flush=True)
    started = time.monotonic()
    results: dict[str, Any] = {}
    # A watchdog: whatever hangs, the run ends by HARD_LIMIT (the context managers stop what they started).
    timer = threading.Timer(HARD_LIMIT, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    try:
        with tempfile.TemporaryDirectory(prefix="forumcast-bench-hls-") as scratch:
            workdir = (args.keep or Path(scratch)).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
            if not args.skip_delay:
                print("== glass-to-glass ...", file=sys.stderr, flush=True)
                results["delay"] = measure_delay(args, workdir)
            if not args.skip_load:
                print("== serving ...", file=sys.stderr, flush=True)
                results["load"] = measure_load(args, workdir)
    finally:
        timer.cancel()
    machine, commit, command = relay.machine_line(), revision(), command_line(args)
    print(f"\n{machine}; commit {commit}; {time.monotonic() - started:.0f} s\n")
    if "delay" in results:
        print(delay_table(results["delay"]) + "\n")
    if "load" in results:
        print(load_table(results["load"], args) + "\n")
        print(caveats(args, results["load"]) + "\n")
    print(f"Command: `{command}`")
    if args.json_out is not None:
        load = results.get("load", {})
        serialisable = {
            **results,
            "load": {k: (dataclasses.asdict(v) if isinstance(v, WrkResult) else v) for k, v in load.items()},
        }
        args.json_out.write_text(
            json.dumps({"machine": machine, "commit": commit, "command": command, **serialisable}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
