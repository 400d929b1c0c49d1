"""Operational endpoints: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (can serve).

``/readyz`` is 503 while the store does not answer, while any supervised background task
(the scheduler, the live loops, the demo, the exhibition's loops) has failed and waits to be
restarted, or while the 3D ingest's worker pool cannot be rebuilt; the body names what is wrong.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from exhibits.keys import EXHIBITION
from server.errors import ForumcastError
from server.http.access import optional_principal, require_ops
from server.http.keys import CONFIG, EVENT, METRICS, SCHEDULER, STORE, TASKS, TOKENS
from server.http.metrics_view import redact

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    if request.app[CONFIG].metrics_token:
        require_ops(request)
    body = request.app[METRICS].render()
    who = optional_principal(request)
    if who is None or not who.is_ops:
        event = request.app[EVENT]
        closed = [stage for stage in event.stages if stage.closed]
        names = [s.id for s in closed] + [i.id for s in closed for i in s.inputs]
        body = redact(body, names, request.app[TOKENS].pseudonym)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "instance": request.app[CONFIG].instance()})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    checks: dict[str, dict[str, object]] = {}
    try:
        await store.ping()
        checks["store"] = {"kind": store.kind, "ok": True}
    except ForumcastError as exc:
        request.app[METRICS].store_errors.inc()
        checks["store"] = {"kind": store.kind, "ok": False, "reason": exc.message}
    tasks = request.app[TASKS]
    scheduler = tasks.status.get("scheduler")
    checks["scheduler"] = {
        "ok": scheduler is None or scheduler.json()["ok"],
        "lag_seconds": round(request.app[SCHEDULER].lag_seconds, 3),
    }
    down = tasks.down()
    checks["tasks"] = {"ok": not down, "tasks": {name: s.json() for name, s in sorted(tasks.status.items())}}
    if down:
        checks["tasks"]["reason"] = "; ".join(
            f"task {s.name} failed ({s.last_error}) and is restarting" for s in down
        )
    checks["ingest"] = request.app[EXHIBITION].workers.health()
    ready = all(bool(c["ok"]) for c in checks.values())
    return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
