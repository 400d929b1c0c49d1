"""``GET /api/v1/inputs``: the health of every input a producer may use, with its stream key;
``POST /api/v1/inputs/{input}/key/rotate``: a new stream key for one input (producer of its
stage, or ops), returned once and in force at once for new publishers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import audit
from server.errors import AuthError
from server.http.access import principal
from server.http.keys import CLOCK, CLUSTER, CONFIG, LIVE, STORE, STREAM_KEYS
from server.live.input_warnings import input_warnings
from server.live.inputs import LiveInput
from server.media.types import TrackKind
from server.stream_keys import StreamKeys

routes = web.RouteTableDef()


def input_json(
    keys: StreamKeys,
    live: LiveInput,
    now: float,
    *,
    here: str,
    switch_budget: float,
    elsewhere: str | None = None,
) -> dict[str, Any]:
    """``here``: this instance's id. ``elsewhere``: in a cluster, the instance whose publisher
    feeds the input when it is not this one (``live`` is then this instance's mirror of it,
    read back from Redis, if it watches one)."""
    init = live.init
    tracks = []
    for track in init.tracks if init is not None else ():
        if track.kind is TrackKind.VIDEO:
            tracks.append(
                {"kind": "video", "codec": track.codec, "width": track.width, "height": track.height}
            )
        elif track.kind is TrackKind.AUDIO:
            tracks.append(
                {
                    "kind": "audio",
                    "codec": track.codec,
                    "sample_rate": track.sample_rate,
                    "channels": track.channels,
                }
            )
    age = live.fragment_age(now)
    publisher = live.publisher
    details = publisher.details() if publisher is not None and publisher.details is not None else {}
    fps = live.frame_rate(now)
    return {
        "id": live.id,
        "stage": live.decl.stage,
        "title": live.decl.title,
        "kind": live.decl.kind.value,
        "state": live.state.value if elsewhere is None or live.is_up(now) else "live",
        "up": live.is_up(now),
        "on_air": live.on_air,
        "preview": bool(live.preview.viewers),
        "publisher": _publisher(live, now, details, here=here, elsewhere=elsewhere),
        "bitrate": round(live.bitrate(now)),
        "fragment_age": None if age is None else round(age, 3),
        "gop_seconds": None if live.gop_seconds is None else round(live.gop_seconds, 3),
        "frame_rate": None if fps is None else round(fps, 2),
        "warnings": input_warnings(init, live.gop_seconds, details, switch_budget=switch_budget),
        "mime": init.mime if init is not None else None,
        "tracks": tracks,
        "preview_viewers": len(live.preview.viewers),
        "stream_key": keys.key(live.id),
    }


def _publisher(
    live: LiveInput, now: float, details: dict[str, Any], *, here: str, elsewhere: str | None
) -> dict[str, Any] | None:
    if elsewhere is not None:  # what this instance knows of a publisher on another: where it is
        return {
            "instance": elsewhere,
            "kind": None,
            "remote": None,
            "seconds": None,
            "encoder": None,
            "declared_bitrate_kbps": None,
        }
    publisher = live.publisher
    if publisher is None:
        return None
    return {
        "instance": here,
        "kind": publisher.kind,
        "remote": publisher.remote,
        "seconds": round(now - publisher.started, 1),
        "encoder": details.get("encoder"),
        "declared_bitrate_kbps": details.get("declared_bitrate_kbps"),
    }


@routes.get("/api/v1/inputs")
async def list_inputs(request: web.Request) -> web.Response:
    who = principal(request)
    hub = request.app[LIVE]
    shown = [live for live in hub.inputs.values() if who.can_produce(live.decl.stage)]
    if not shown and who.role != "producer":
        raise AuthError("auth.forbidden", "this needs a producer token")
    now, keys = request.app[CLOCK].monotonic(), request.app[STREAM_KEYS]
    config = request.app[CONFIG]
    here, budget = config.instance(), config.hls_target_duration
    if CLUSTER not in request.app:
        listed = [input_json(keys, live, now, here=here, switch_budget=budget) for live in shown]
        return web.json_response({"inputs": listed})
    # In a cluster the publisher may be connected to another instance: show this instance's
    # mirror of the input when it has one, and say where the publisher is.
    registry, listed = request.app[CLUSTER].registry, []
    for live in shown:
        elsewhere = None if live.publisher is not None else registry.holder(live.id)
        mirror = hub.sources.get(live.id) if elsewhere is not None else None
        listed.append(
            input_json(keys, mirror or live, now, here=here, switch_budget=budget, elsewhere=elsewhere)
        )
    return web.json_response({"inputs": listed})


@routes.post("/api/v1/inputs/{input}/key/rotate")
async def rotate_key(request: web.Request) -> web.Response:
    live = request.app[LIVE].input(request.match_info["input"])
    who = principal(request)
    if not (who.can_produce(live.decl.stage) or who.is_ops):
        raise AuthError("auth.forbidden", f"rotating {live.id!r}'s key needs a producer token for its stage")
    key = await request.app[STREAM_KEYS].rotate(request.app[STORE], live.id)
    await audit.record(request, who, "stream_key.rotate", f"input:{live.id}", stage=live.decl.stage)
    return web.json_response({"input": live.id, "stream_key": key}, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
