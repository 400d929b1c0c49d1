"""Operational endpoints: ``/metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (can serve)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from server.errors import ForumcastError
from server.http.access import require_ops
from server.http.app import CONFIG, METRICS, SCHEDULER, STORE

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    if request.app[CONFIG].metrics_token:
        require_ops(request)
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


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
    checks["scheduler"] = {"ok": True, "lag_seconds": round(request.app[SCHEDULER].lag_seconds, 3)}
    ready = all(bool(c["ok"]) for c in checks.values())
    return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
