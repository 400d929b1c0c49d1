"""/metrics, /healthz and /readyz (server/http/ops_routes.py) on a real server."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.clock import ManualClock
from server.http.keys import TASKS
from server.schedule.yaml_format import load_yaml_text
from tests.conftest import TOKENS, Serve, at, auth
from tests.support.redis_server import RedisServer


def promtool_check(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's 'prometheus' package (the test command does)"
    path = tmp_path / "metrics.txt"
    path.write_text(text)
    with path.open() as stdin:
        return subprocess.run(
            [promtool, "check", "metrics"], stdin=stdin, capture_output=True, text=True, check=False
        )


async def test_metrics_content_and_promtool(serve: Serve, tmp_path: Path) -> None:
    client = await serve(clock=ManualClock(at("2020-12-06T10:15:00+08:00")))
    for _ in range(3):
        assert (await client.get("/api/v1/stages/main")).status == 200
    assert (await client.get("/api/v1/stages/nowhere")).status == 404
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    text = await response.text()
    lines = set(text.splitlines())
    assert (
        'forumcast_http_requests_total{method="GET",route="/api/v1/stages/{stage}",status="200"} 3.0' in lines
    )
    assert (
        'forumcast_http_requests_total{method="GET",route="/api/v1/stages/{stage}",status="404"} 1.0' in lines
    )
    assert 'forumcast_stage_live{stage="main"} 1.0' in lines
    assert 'forumcast_stage_live{stage="europe"} 0.0' in lines
    # alone, without Redis, this instance is the cluster and leads every stage
    assert "forumcast_cluster_instances 1.0" in lines
    assert 'forumcast_stage_leader{stage="main"} 1.0' in lines
    for stage in ("main", "forum-a", f"closed-{TOKENS.pseudonym('closed')}", "europe"):
        for protocol in ("ws", "hls"):
            assert f'forumcast_viewers{{protocol="{protocol}",stage="{stage}"}} 0.0' in lines
    assert any(line.startswith("forumcast_scheduler_lag_seconds ") for line in lines)
    assert any(line.startswith("forumcast_http_request_duration_seconds_bucket{") for line in lines)
    assert any(line.startswith("process_resident_memory_bytes ") for line in lines)
    result = promtool_check(text, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_each_app_has_its_own_registry(serve: Serve) -> None:
    first, second = await serve(), await serve()
    await first.get("/healthz")
    await first.get("/healthz")
    text = await (await second.get("/metrics")).text()
    assert 'forumcast_http_requests_total{method="GET",route="/healthz",status="200"}' not in text


async def test_metrics_can_require_an_ops_token(serve: Serve) -> None:
    client = await serve(metrics_token=True)
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=auth("producer"))).status == 403
    assert (await client.get("/metrics", headers=auth("ops"))).status == 200


async def test_health_and_readiness_on_memory(serve: Serve) -> None:
    client = await serve()
    # the instance is named hostname:port (the configured port) unless instance_id says otherwise
    assert await (await client.get("/healthz")).json() == {
        "status": "ok",
        "instance": f"{socket.gethostname()}:8080",
    }
    named = await serve(instance_id="shenzhen-a")
    assert await (await named.get("/healthz")).json() == {"status": "ok", "instance": "shenzhen-a"}
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"]["store"] == {"kind": "memory", "ok": True}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


async def test_readiness_follows_redis(serve: Serve, own_redis: RedisServer) -> None:
    client = await serve(redis_url=own_redis.url)
    assert (await client.get("/readyz")).status == 200
    own_redis.stop()
    down = await client.get("/readyz")
    assert down.status == 503
    body = await down.json()
    assert body["ready"] is False and body["checks"]["store"]["ok"] is False
    assert str(own_redis.port) in body["checks"]["store"]["reason"]
    assert (await client.get("/healthz")).status == 200  # alive, just not ready
    assert (await client.get("/api/v1/stages")).status == 200  # the schedule still reads
    own_redis.restart()
    assert (await client.get("/readyz")).status == 200  # reconnected by itself


async def test_access_log_masks_secret_links_and_credentials(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve()
    secret = "s3cr3t-status-link-0123456789"
    with caplog.at_level(logging.INFO, logger="forumcast.http"):
        await client.get(f"/api/v1/meeting-requests/{secret}")
        await client.get("/api/v1/schedule.ics?token=eyJhbGciOi.leaked.sig&tz=UTC")
    lines = [r.getMessage() for r in caplog.records if r.name == "forumcast.http"]
    assert any("/api/v1/meeting-requests/{secret} 404" in line for line in lines)
    assert any("/api/v1/schedule.ics?token=***&tz=UTC" in line for line in lines)
    assert not any(secret in line or "leaked" in line for line in lines)


async def test_readyz_names_a_failed_background_task_until_it_is_restarted(serve: Serve) -> None:
    clock = ManualClock(at("2020-12-06T10:15:00+08:00"))
    client = await serve(clock=clock)
    body = await (await client.get("/readyz")).json()
    assert body["ready"] is True
    assert set(body["checks"]["tasks"]["tasks"]) == {
        "scheduler",
        "live-supervise",
        "live-viewers",
        "live-stats",
        "live-stalls",
        "live-schedule-events",
        "event-loop-lag",
        "store-probe",
        "tokens-revocations",
        "stream-keys",
        "exhibition-hall",
        "exhibition-rescan",
    }
    fail = asyncio.Event()
    fail.set()

    async def probe() -> None:
        if fail.is_set():
            fail.clear()
            raise RuntimeError("the probe broke")
        await asyncio.Event().wait()

    client.app[TASKS].start("probe", probe)
    await asyncio.sleep(0.05)
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 503 and body["ready"] is False
    tasks = body["checks"]["tasks"]
    assert tasks["ok"] is False
    assert tasks["reason"] == "task probe failed (RuntimeError: the probe broke) and is restarting"
    assert tasks["tasks"]["probe"] == {
        "state": "restarting",
        "ok": False,
        "failures": 1,
        "last_error": "RuntimeError: the probe broke",
    }
    lines = set((await (await client.get("/metrics")).text()).splitlines())
    assert 'forumcast_task_failures_total{task="probe"} 1.0' in lines
    assert 'forumcast_task_up{task="probe"} 0.0' in lines
    assert 'forumcast_task_up{task="live-supervise"} 1.0' in lines
    # The backoff runs on the service clock: once it has passed, the probe runs again.
    await clock.run(1.0, step=0.1)
    await asyncio.sleep(0.05)
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["checks"]["tasks"]["tasks"]["probe"]["state"] == "running"


async def test_anonymous_scrapes_do_not_name_closed_stages_or_their_inputs(serve: Serve) -> None:
    event = load_yaml_text(CLOSED_WITH_INPUT, file="closed.yaml")
    client = await serve(event=event, clock=ManualClock(at("2020-12-06T10:15:00+08:00")))
    anonymous = await (await client.get("/metrics")).text()
    ops = await (await client.get("/metrics", headers=auth("ops"))).text()
    stand_in = f"closed-{TOKENS.pseudonym('board')}"
    for secret in ("board", "board-cam"):
        assert f'"{secret}"' not in anonymous and f'"{secret}"' in ops
    assert f'forumcast_stage_live{{stage="{stand_in}"}} 1.0' in anonymous.splitlines()
    assert (
        f'forumcast_input_up{{input="closed-{TOKENS.pseudonym("board-cam")}"}} 0.0' in anonymous.splitlines()
    )
    assert 'forumcast_stage_live{stage="open"} 0.0' in anonymous.splitlines()  # open names stay
    # The same stand-in on every scrape, so dashboards keep their series.
    assert stand_in in await (await client.get("/metrics")).text()


CLOSED_WITH_INPUT = """
event: {id: redact, title: {en: Redact}, timezone: Asia/Shanghai}
venues: [{id: sz, name: {en: Shenzhen}, timezone: Asia/Shanghai}]
stages:
  - {id: open, title: {en: Open}, kind: forum, venue: sz}
  - id: board
    title: {en: Board}
    kind: closed-door
    venue: sz
    inputs: [{id: board-cam, title: Board camera, kind: camera}]
sessions:
  - {id: board-meeting, stage: board, title: {en: Board meeting}, input: board-cam,
     start: 2020-12-06T10:00:00+08:00, end: 2020-12-06T11:00:00+08:00}
"""
