"""``GET /api/v1/cluster``: the live instances and who leads each stage.

For ops and producers (a producer sees the stages its token covers). Without Redis there is
one instance, this one, leading every stage at epoch 0. Each stage's viewers on every
instance: WebSocket, our LL-HLS players (counted in Redis in a cluster, each once), and the
distinct-client estimate (:mod:`server.live.hls_audience`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.errors import AuthError
from server.http.access import principal
from server.http.keys import CLUSTER, CONFIG, EVENT, LIVE, STARTED
from server.live.hub import LiveHub

routes = web.RouteTableDef()


@routes.get("/api/v1/cluster")
async def cluster(request: web.Request) -> web.Response:
    who = principal(request)
    if not (who.is_ops or who.role == "producer"):
        raise AuthError("auth.forbidden", "this needs an ops or producer token")
    app = request.app
    hub = app[LIVE]
    stages = [s.id for s in app[EVENT].stages if who.is_ops or who.can_produce(s.id)]
    instances: list[dict[str, Any]]
    leaders: dict[str, dict[str, Any] | None]
    if CLUSTER in app:
        node = app[CLUSTER]
        instances = [_instance(d) for d in node.registry.instances()]
        known = node.leadership.leaders
        leaders = {stage: _leader(known.get(stage)) for stage in stages}
    else:
        config = app[CONFIG]
        me = {
            "id": config.instance(),
            "address": f"{config.host}:{config.port}",
            "started": app[STARTED],
            "viewers": {
                s: {"ws": p.viewer_count, "hls": hub.hls[s].tally.here} for s, p in hub.programs.items()
            },
            "publishers": sorted(i for i, live in hub.inputs.items() if live.publisher is not None),
            "leads": list(hub.programs),
        }
        instances = [_instance(me)]
        leaders = {stage: {"instance": me["id"], "epoch": 0} for stage in stages}
    return web.json_response(
        {
            "redis": CLUSTER in app,
            "instances": instances,
            "stages": [
                {"id": stage, "leader": leaders[stage], "viewers": _viewers(hub, stage)} for stage in stages
            ],
        },
        headers={"Cache-Control": "no-store"},
    )


def _viewers(hub: LiveHub, stage: str) -> dict[str, int]:
    tally = hub.hls[stage].tally
    return {"ws": hub.viewer_count(stage), "hls": tally.viewers, "hls_clients": tally.clients}


def _leader(leader: tuple[str, int] | None) -> dict[str, Any] | None:
    return None if leader is None else {"instance": leader[0], "epoch": leader[1]}


def _instance(description: dict[str, Any]) -> dict[str, Any]:
    viewers = description.get("viewers", {})
    return {
        "id": description.get("id"),
        "address": description.get("address"),
        "started": description.get("started"),
        "viewers": sum(v.get("ws", 0) + v.get("hls", 0) for v in viewers.values() if isinstance(v, dict)),
        "viewers_by_stage": viewers,
        "publishers": len(description.get("publishers", [])),
        "leads": description.get("leads", []),
    }


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
