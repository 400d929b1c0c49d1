"""The compose topology from real processes on loopback (marker ``topology``).

Docker cannot run here, so the set-up of deploy/compose.yaml is rebuilt from the same parts:
one redis-server, three ``forumcast serve`` instances with publishers on a live event
(tests/support/cluster.py), Debian's nginx with the shipped front config
(deploy/nginx/forumcast.conf, upstreams and paths rewritten: tests/support/front.py), mtail
with the shipped program on the front's access log, and Prometheus with the shipped scrape
config aimed at them. Everything a viewer does here goes through the front.

Run alone with ``pytest -m topology``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import pytest

from tests.deploy.test_alerts import ALERTS
from tests.exhibits import assets
from tests.support.cluster import Cluster, Recording, assert_timeline, decode_errors, token
from tests.support.front import Front, Mtail
from tests.support.hls_playlist import MediaPlaylist, parse_media_playlist
from tests.support.panels import DEADLINE, Traffic, panel_queries, visit_the_hall
from tests.support.prometheus import Prometheus
from tests.web.browser import launch
from tests.web.test_hls_playback import MAX_STALL, SAMPLER
from tests.web.test_pages import wait_playing
from tests.web.test_switching_playback import longest_stall, open_page, samples_of

pytestmark = [pytest.mark.topology, pytest.mark.out_of_process_servers]

STAGE = "main"
PLAYERS = 200
PLAY_SECONDS = 12.0


@dataclass
class Topology:
    cluster: Cluster
    front: Front
    mtail: Mtail
    prometheus: Prometheus
    traffic: Traffic
    root: Path


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, clip: Path) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp("topology")
    with contextlib.ExitStack() as stack:
        # as compose.yaml does: the instances believe the front's X-Forwarded-For
        env = {"FORUMCAST_TRUSTED_PROXIES": "127.0.0.1"}
        cluster = stack.enter_context(Cluster(root / "cluster", clip, env=env))
        upstreams = [f"127.0.0.1:{i.port}" for i in cluster.instances]
        front = stack.enter_context(Front(root / "front", upstreams))
        mtail = stack.enter_context(Mtail(root / "mtail", front.access_log))
        targets = {"forumcast": [f"127.0.0.1:{i.port}" for i in cluster.instances], "front": [mtail.address]}
        prometheus = stack.enter_context(Prometheus(root / "prometheus", targets, scrape_interval="1s"))
        # Background viewers for the dashboards' panels, for the whole module (the last test
        # evaluates every panel after the others' traffic too).
        traffic = Traffic(cluster.instances, front.url)
        traffic.start()
        stack.callback(traffic.stop)
        visit_the_hall(cluster.instances[2])
        yield Topology(cluster, front, mtail, prometheus, traffic, root)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def mtail_value(mtail: Mtail, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    total = 0.0
    for line in mtail.metrics().splitlines():
        match = re.match(rf"^{name}\{{([^}}]*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def origin_part_requests(topology: Topology) -> float:
    """Requests for LL-HLS parts that reached the instances (their own counters, summed)."""
    total = 0.0
    for instance in topology.cluster.instances:
        status, body = instance.get("/metrics")
        assert status == 200
        for line in body.decode().splitlines():
            if line.startswith("forumcast_http_requests_total{") and "/part/" in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_websocket_viewer_plays_through_the_front(topology: Topology, tmp_path: Path) -> None:
    recording = asyncio.run(Recording(f"{topology.front.ws}/ws/watch/{STAGE}").run(5.0))
    inits, fragments = recording.parsed()
    assert inits and len(fragments) >= 10, (len(inits), len(fragments), recording.events[:3])
    assert_timeline(fragments)
    assert decode_errors(recording.stream(), tmp_path / "through-front.mp4") == ""
    # The front logged the upgrade as a WebSocket (once it closed).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not mtail_value(
        topology.mtail, "forumcast_front_requests_total", kind="websocket"
    ):
        time.sleep(0.1)
    assert mtail_value(topology.mtail, "forumcast_front_requests_total", kind="websocket", cache="none") >= 1


def upload_model(topology: Topology, tmp_path: Path) -> str:
    """A tower uploaded through the front by its exhibitor (the CLI's upload); its LOD 0 URL."""
    status, _, body = get(f"{topology.front.url}/api/v1/exhibits")
    assert status == 200
    exhibit = json.loads(body)["items"][0]["id"]
    source = tmp_path / "tower.stl"
    source.write_bytes(assets.export(assets.tower(), "stl"))
    result = subprocess.run(
        [sys.executable, "-m", "server", "exhibits", "ingest", str(source), "--exhibit", exhibit,
         "--server", topology.front.url, "--token", token(f"exhibitor:{exhibit}"), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert model["status"] == "ready", model
    # The upload's own answer: the exhibit's page on another instance may not show it yet.
    url: str = model["lods"][0]["url"]
    return url


def test_a_model_is_cached_by_the_front_as_immutable(topology: Topology, tmp_path: Path) -> None:
    path = upload_model(topology, tmp_path)
    sha = re.fullmatch(r"/models/([0-9a-f]{64})\.glb", path)
    assert sha, path
    before = mtail_value(topology.mtail, "forumcast_front_requests_total", kind="model", cache="HIT")
    first = get(topology.front.url + path)
    second = get(topology.front.url + path)
    assert first[0] == second[0] == 200
    assert first[1]["X-Cache-Status"] == "MISS" and second[1]["X-Cache-Status"] == "HIT"
    for _, headers, _ in (first, second):
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert headers["ETag"] == f'"{sha.group(1)}"'
    assert first[2] == second[2] and first[2][:4] == b"glTF"
    # A range from the cached file, and the validator still answered.
    ranged = get(topology.front.url + path, {"Range": "bytes=0-3"})
    assert ranged[0] == 206 and ranged[2] == b"glTF"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if (
            mtail_value(topology.mtail, "forumcast_front_requests_total", kind="model", cache="HIT")
            >= before + 2
        ):
            break
        time.sleep(0.1)
    assert (
        mtail_value(topology.mtail, "forumcast_front_requests_total", kind="model", cache="HIT") >= before + 2
    )


@dataclass
class Player:
    """A simulated LL-HLS player: blocking reloads ``_HLS_msn``/``_HLS_part`` for the next
    part and, at the same time, the part its preload hint names (held by the origin until it
    exists), as hls.js and AVPlayer do in low-latency mode."""

    base: str  # the media playlist's URL
    parts: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    init: bytes = b""

    async def run(self, session: aiohttp.ClientSession, until: float) -> None:
        playlist = await self._playlist(session, self.base)
        if playlist is None:
            return
        map_uri = playlist.segments[-1].map_uri if playlist.segments else None
        if map_uri:
            self.init = await self._get(session, urljoin(self.base, map_uri)) or b""
        while time.monotonic() < until and not self.errors:
            msn, part = next_part(playlist)
            hint = [urljoin(self.base, h.uri) for h in playlist.preload_hints if h.type == "PART"]
            reload = f"{self.base}?_HLS_msn={msn}&_HLS_part={part}"
            results = await asyncio.gather(
                self._playlist(session, reload), *(self._part(session, u) for u in hint)
            )
            if results[0] is None:
                return
            playlist = results[0]
            for listed in all_parts(playlist)[-3:]:  # catch up on a part the hint did not name
                await self._part(session, urljoin(self.base, listed))

    async def _playlist(self, session: aiohttp.ClientSession, url: str) -> MediaPlaylist | None:
        body = await self._get(session, url)
        return None if body is None else parse_media_playlist(body.decode(), uri=url)

    async def _part(self, session: aiohttp.ClientSession, url: str) -> None:
        if url not in self.parts and await self._get(session, url) is not None:
            self.parts.add(url)

    async def _get(self, session: aiohttp.ClientSession, url: str) -> bytes | None:
        async with session.get(url) as response:
            body = await response.read()
            if response.status != 200:
                self.errors.append(f"{response.status} {url}")
                return None
            return body


def all_parts(playlist: MediaPlaylist) -> list[str]:
    return [p.uri for s in playlist.segments for p in s.parts] + [p.uri for p in playlist.trailing_parts]


def next_part(playlist: MediaPlaylist) -> tuple[int, int]:
    """The (MSN, part index) after the newest part listed (RFC 8216bis 6.2.5.2)."""
    msn = playlist.media_sequence + len(playlist.segments)
    if playlist.trailing_parts:
        return msn, len(playlist.trailing_parts)
    return msn, 0


async def play(url: str, players: int, seconds: float) -> list[Player]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        crowd = [Player(url) for _ in range(players)]
        until = time.monotonic() + seconds
        await asyncio.gather(*(p.run(session, until) for p in crowd))
        return crowd


def test_200_ll_hls_players_cost_about_one_origin_request_per_part(topology: Topology) -> None:
    before = origin_part_requests(topology)
    # The crowd is a load generator, not code under test: its loop runs without asyncio's
    # debug mode (whose slow-callback reports the suite's guard turns into failures).
    crowd = asyncio.run(
        play(f"{topology.front.url}/live/{STAGE}/media.m3u8", PLAYERS, PLAY_SECONDS), debug=False
    )
    after = origin_part_requests(topology)
    errors = [e for p in crowd for e in p.errors]
    assert not errors, errors[:10]
    made = set().union(*(p.parts for p in crowd))
    # Every player got the init and followed the live edge part by part.
    assert all(p.init[4:8] == b"ftyp" for p in crowd)
    assert min(len(p.parts) for p in crowd) >= PLAY_SECONDS / 1.0, sorted(len(p.parts) for p in crowd)[:5]
    fetched = sum(len(p.parts) for p in crowd)
    origin = after - before
    # Without the front's cache and lock, the origin would see every player's request.
    assert fetched >= PLAYERS * 10
    assert origin <= 1.1 * len(made) + 2, (origin, len(made), fetched)
    print(f"players {PLAYERS}: parts made {len(made)}, fetched {fetched}, origin part requests {origin}")
    hits = mtail_value(topology.mtail, "forumcast_front_requests_total", kind="part", cache="HIT")
    # the rest from the cache (a handful may show as UPDATING or STALE while one refreshes)
    assert hits >= 0.99 * (fetched - origin - len(made)), (hits, fetched, origin)


def viewer_id_from(front: Front, source: str) -> int:
    """``POST viewer-id`` through the front from the loopback address ``source``."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", int(front.url.rsplit(":", 1)[1]), timeout=10, source_address=(source, 0)
    )
    try:
        connection.request("POST", f"/live/{STAGE}/viewer-id")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_hls_players_behind_the_front_each_get_a_viewer_id(topology: Topology) -> None:
    # 40 players from 40 addresses (127.0.0.0/8 is all loopback), all seen through one front:
    # with the front trusted, each address is its own client, well under its 30 ids.
    assert [viewer_id_from(topology.front, f"127.0.1.{n}") for n in range(1, 41)] == [201] * 40
    # One address past its 30 ids in 10 minutes is held back, and only that one.
    statuses = [viewer_id_from(topology.front, "127.0.2.1") for _ in range(31)]
    assert statuses == [201] * 30 + [429], statuses
    assert viewer_id_from(topology.front, "127.0.2.2") == 201


def program_source(topology: Topology) -> set[str | None]:
    """What every instance says the stage's program shows."""
    sources = set()
    for instance in topology.cluster.instances:
        status, body = instance.get(f"/api/v1/stages/{STAGE}/program", role="producer")
        assert status == 200, body
        sources.add(body["program"]["source"])
    return sources


def cluster_hls_viewers(topology: Topology) -> int:
    status, body = topology.cluster.instances[0].get("/api/v1/cluster")
    assert status == 200, body
    viewers: int = next(s for s in body["stages"] if s["id"] == STAGE)["viewers"]["hls"]
    return viewers


async def hls_js_across_takes(topology: Topology) -> None:
    """The viewer page through the front, in HLS mode, while a producer takes back and forth."""
    front, cluster = topology.front, topology.cluster
    urls: list[str] = []
    async with contextlib.asynccontextmanager(launch)() as browser:
        context, page, console = await open_page(
            browser, SAMPLER, "localStorage.setItem('forumcast.protocol', 'hls');"
        )
        page.on("request", lambda request: urls.append(request.url) if "/live/" in request.url else None)
        failed: list[str] = []
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        # the module's background player already counts (tests/support/panels.py)
        baseline = await asyncio.to_thread(cluster_hls_viewers, topology)
        await page.goto(f"{front.url}/#{STAGE}")
        await page.wait_for_function("() => document.getElementById('video').dataset.engine === 'hls.js'")
        await wait_playing(page, "#video")
        mark = await page.evaluate("performance.now()")
        started = time.monotonic()
        producer = cluster.instances[1]  # a take on any instance reaches the stage's leader
        for source in ("stern-uk", "main-cam", "stern-uk"):
            status, body = await asyncio.to_thread(
                producer.post, f"/api/v1/stages/{STAGE}/take", {"input": source}
            )
            assert status == 200, body
            await page.wait_for_selector(f'#now-playing[data-source="{source}"]', timeout=10_000)
            assert await asyncio.to_thread(program_source, topology) == {source}
            await asyncio.sleep(3.0)  # play the new source for a while
        elapsed = time.monotonic() - started
        samples = [s for s in await samples_of(page) if s[0] >= mark]
        stall, stall_at = longest_stall(samples)
        played = samples[-1][1] - samples[0][1]
        assert stall <= MAX_STALL, f"the playhead stood still for {stall:.2f} s at {stall_at:.1f} s"
        assert played > elapsed - 2 * MAX_STALL, f"{played:.1f} s played in {elapsed:.1f} s"
        # The page's heartbeat went through the front too: one more HLS viewer, cluster-wide.
        deadline = time.monotonic() + 10
        while await asyncio.to_thread(cluster_hls_viewers, topology) != baseline + 1:
            assert time.monotonic() < deadline, f"HLS viewers not {baseline} + 1 within 10 s"
            await asyncio.sleep(0.3)
        assert console.errors == [], failed
        await context.close()
    status, body = await asyncio.to_thread(producer.post, f"/api/v1/stages/{STAGE}/auto", {})
    assert status == 200, body
    media = [u for u in urls if "/part/" in u or "/init/" in u or "media.m3u8" in u]
    assert sum("/part/" in u for u in media) > 30, len(media)
    assert all(u.startswith(front.url + "/live/") for u in urls), [u for u in urls if front.url not in u]
    # Media URLs name no viewer: parts and inits carry no query at all.
    assert not [u for u in media if "?" in u and "media.m3u8" not in u]


def test_hls_js_plays_a_stage_through_the_front_across_takes(topology: Topology) -> None:
    asyncio.run(hls_js_across_takes(topology))


def newest_part(text: str) -> int:
    playlist = parse_media_playlist(text)
    return max(int(re.search(r"part/(\d+)\.m4s", uri).group(1)) for uri in all_parts(playlist))  # type: ignore[union-attr]


def test_a_playlist_from_the_front_is_never_older_than_two_seconds(topology: Topology) -> None:
    # Cached once, then nobody asks for four seconds: the next player must not get that copy
    # (its parts would be gone soon), at most one refreshed within the last two seconds.
    url = f"{topology.front.url}/live/{STAGE}/media.m3u8"
    assert get(url)[0] == 200
    time.sleep(4.0)
    status, headers, body = get(url)
    origin = get(f"{topology.cluster.instances[0].url}/live/{STAGE}/media.m3u8")
    assert status == origin[0] == 200
    lag = newest_part(origin[2].decode()) - newest_part(body.decode())
    assert lag <= 2.0 / 0.2, (lag, headers.get("X-Cache-Status"))


def test_every_panel_query_returns_a_series_from_the_shipped_prometheus(topology: Topology) -> None:
    # Last in the module: the shipped scrape config and rules have seen a minute and more of
    # the traffic above (viewers, players, takes, an upload).
    prom = topology.prometheus
    prom.wait_for_targets("forumcast", up=3)
    prom.wait_for_targets("front", up=1)
    prom.wait_for_targets("prometheus", up=1)
    started = time.monotonic()
    while True:
        checked = panel_queries(prom)
        empty = [label for label, expr in checked.items() if not prom.query(expr)]
        if not empty or time.monotonic() - started > DEADLINE:
            break
        time.sleep(2.0)
    assert not empty, {label: checked[label] for label in empty}
    assert len(checked) > 40
    # the traffic really flowed: every viewer got media, the player got parts through the front
    received = dict(topology.traffic.received)
    assert len(received) == 7 and min(received.values()) > 0, received
    # the same Prometheus loaded the shipped alert rules and evaluates them without error
    rules = prom.rules()
    assert {r["name"] for r in rules} == ALERTS
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
