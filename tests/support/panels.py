"""What the dashboards' panels need to be checked against a real Prometheus (used by the
topology test, tests/deploy/test_topology.py): traffic for every panel to show (WebSocket
viewers on every instance, an LL-HLS player with its heartbeats through the front, visits of
the 3D hall), and every panel target's expression with its dashboard's variables set to a
real value from their own ``label_values`` queries."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.request
from typing import Any
from urllib.parse import urljoin

import aiohttp
from websockets.asyncio.client import connect

from tests.deploy.test_dashboards import dashboards
from tests.support.cluster import Instance
from tests.support.hls_playlist import parse_media_playlist
from tests.support.prometheus import Prometheus

#: What ``$__rate_interval`` stands for here (Grafana makes it at least 4 scrape intervals).
RATE_INTERVAL = "30s"
#: Seconds of traffic at most before every query must have its series.
DEADLINE = 75.0
#: Values the variables prefer when their query offers them (the busiest stage and input).
PREFERRED = {"stage": "main", "input": "main-cam"}


class Traffic:
    """Viewers and an LL-HLS player in a thread of their own, until :meth:`stop`."""

    def __init__(self, instances: list[Instance], front: str) -> None:
        self.instances = instances
        self.front = front
        self.received: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    async def _main(self) -> None:
        tasks = [
            asyncio.create_task(self._viewer(f"{i.ws}/ws/watch/{stage}", f"{i.name}/{stage}"))
            for i in self.instances
            for stage in ("main", "forum-a")
        ]
        # the LL-HLS player through the front: the front's metrics (mtail) and the origin's
        tasks.append(asyncio.create_task(self._hls_player(self.front + "/live/main/")))
        while not self._stop.is_set():
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _viewer(self, url: str, name: str) -> None:
        async with connect(url, max_size=None) as ws:
            async for message in ws:
                if isinstance(message, bytes):
                    self.received[name] = self.received.get(name, 0) + 1

    async def _hls_player(self, base: str) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "viewer-id") as response:
                viewer = await response.json()
            beat = 0.0
            while True:
                if time.monotonic() - beat >= viewer["interval"]:
                    async with http.post(base + "heartbeat", json={"id": viewer["id"]}) as response:
                        await response.read()
                    beat = time.monotonic()
                async with http.get(base + "index.m3u8") as response:
                    await response.read()
                async with http.get(base + "media.m3u8") as response:
                    text = await response.text()
                if response.status == 200:
                    playlist = parse_media_playlist(text)
                    parts = [p for s in playlist.segments for p in s.parts] + playlist.trailing_parts
                    if parts:
                        async with http.get(urljoin(base + "media.m3u8", parts[-1].uri)) as media:
                            await media.read()
                        self.received["hls"] = self.received.get("hls", 0) + 1
                await asyncio.sleep(0.5)


def post(instance: Instance, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        instance.url + path,
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def visit_the_hall(instance: Instance) -> None:
    """A visitor id, a detail view and a model load of one exhibit (what its panels count)."""
    status, body = instance.get("/api/v1/exhibits", role=None)
    assert status == 200, body
    exhibit = body["items"][0]["id"]
    visitor = post(instance, "/api/v1/visitors")["visitor"]
    for kind in ("detail", "model"):
        post(instance, f"/api/v1/exhibits/{exhibit}/views", {"visitor": visitor, "kind": kind})


def variable_values(prom: Prometheus, model: dict[str, Any]) -> dict[str, str]:
    """One real value per variable of ``model``, from its own label_values query."""
    values = {}
    for variable in model["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
        assert match, variable
        selector, label = match.groups()
        offered = sorted(prom.api(f"label/{label}/values", **{"match[]": selector}))
        assert offered, f"variable {variable['name']}: {variable['query']['query']} offers nothing"
        name = variable["name"]
        values[name] = PREFERRED[name] if PREFERRED.get(name) in offered else offered[0]
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL)
    for name, value in values.items():
        expr = expr.replace(f"${name}", value)  # (as Grafana does for one value)
    assert "$" not in expr, expr
    return expr


def panel_queries(prom: Prometheus) -> dict[str, str]:
    """label -> substituted expr of every panel target."""
    checked = {}
    for name, model in dashboards().items():
        values = variable_values(prom, model)
        for panel in model["panels"]:
            for target in panel["targets"]:
                label = f"{name} / {panel['title']} / {target['refId']}"
                checked[label] = substitute(target["expr"], values)
    return checked
