"""Taking tokens back: revocation by jti and by token over HTTP and from the CLI (memory store
and a real Redis shared by two instances), and secret rotation with key ids."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import redis

from server.auth import Tokens, key_id
from server.http.app import create_app
from tests.conftest import FIXTURES, SECRET, TOKENS, Serve, auth, server_config
from tests.support.redis_server import RedisServer

OPS = auth("ops")
ROOT = Path(__file__).resolve().parents[2]


def issued(role: str, stage: str | None = None, tokens: Tokens = TOKENS) -> tuple[str, str]:
    return tokens.issue_with_id(role, stage=stage, ttl=timedelta(hours=1), subject="guest")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def error_of(response: aiohttp.ClientResponse) -> tuple[int, str]:
    return response.status, (await response.json())["error"]["code"]


async def refused_upgrade(client: Any, path: str, token: str) -> tuple[int, str]:
    """The answer to a WebSocket upgrade of ``path`` with ``token`` (refusals come before it)."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(path, headers=bearer(token))
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
    assert refused.value.status == 401
    return await error_of(await client.get(path, headers=bearer(token) | upgrade))


async def test_revoke_by_jti_and_by_token(serve: Serve, store_settings: dict[str, Any]) -> None:
    client = await serve(**store_settings)
    viewer, viewer_jti = issued("viewer:closed")
    producer, _ = issued("producer", "main")
    other_viewer, _ = issued("viewer:closed")
    other_producer, _ = issued("producer", "main")
    # Before: both work, on a REST route and on the closed stage's WebSocket.
    assert (await client.get("/api/v1/inputs", headers=bearer(producer))).status == 200
    ws = await client.ws_connect("/ws/watch/closed", headers=bearer(viewer))
    await ws.close()

    by_jti = await client.post("/api/v1/tokens/revoke", json={"jti": viewer_jti}, headers=OPS)
    assert by_jti.status == 200
    assert (await by_jti.json())["revoked"]["jti"] == viewer_jti
    by_token = await client.post("/api/v1/tokens/revoke", json={"token": producer}, headers=OPS)
    assert by_token.status == 200
    revoked = (await by_token.json())["revoked"]
    assert revoked["expires"] == jwt.decode(producer, options={"verify_signature": False})["exp"]

    assert await refused_upgrade(client, "/ws/watch/closed", viewer) == (401, "auth.revoked_token")
    assert await error_of(await client.get("/api/v1/inputs", headers=bearer(producer))) == (
        401,
        "auth.revoked_token",
    )
    assert await refused_upgrade(client, "/ws/watch/input/main-cam", producer) == (401, "auth.revoked_token")
    take = await client.post("/api/v1/stages/main/take", json={"input": "slate"}, headers=bearer(producer))
    assert await error_of(take) == (401, "auth.revoked_token")
    # Other tokens with the same roles are not affected.
    assert (await client.get("/api/v1/inputs", headers=bearer(other_producer))).status == 200
    ws = await client.ws_connect("/ws/watch/closed", headers=bearer(other_viewer))
    await ws.close()


async def test_bad_revocations(serve: Serve) -> None:
    client = await serve()
    viewer, _ = issued("viewer:closed")
    revoke = "/api/v1/tokens/revoke"
    producer = auth("producer")
    assert await error_of(await client.post(revoke, json={"jti": "x"}, headers=producer)) == (
        403,
        "auth.forbidden",
    )
    assert await error_of(await client.post(revoke, json={"jti": "x"})) == (401, "auth.missing_token")
    foreign = Tokens("another-secret-0123456789abcdefghijkl").issue("ops", ttl=timedelta(hours=1))
    for body, code in [
        ({}, "auth.bad_revocation"),
        ({"jti": 5}, "auth.bad_revocation"),
        ({"jti": ""}, "auth.bad_revocation"),
        ({"jti": "a", "token": viewer}, "auth.bad_revocation"),
        ({"token": "not.a.token"}, "auth.bad_revocation"),
        ({"token": foreign}, "auth.bad_revocation"),
        (["jti"], "auth.bad_revocation"),
    ]:
        assert await error_of(await client.post(revoke, json=body, headers=OPS)) == (400, code), body
    assert await error_of(await client.post(revoke, data=b"{", headers=OPS)) == (400, "request.bad_json")
    # Past the recursion limit, and an integer int() refuses: both were 500s.
    for raw in (b"[" * 5000 + b"]" * 5000, b'{"jti": ' + b"9" * 5000 + b"}"):
        assert await error_of(await client.post(revoke, data=raw, headers=OPS)) == (400, "request.bad_json")
    # Nothing was revoked by the refusals.
    ws = await client.ws_connect("/ws/watch/closed", headers=bearer(viewer))
    await ws.close()


async def test_a_revocation_reaches_another_instance_through_redis(
    serve: Serve, redis_server: RedisServer
) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    first = await serve(redis_url=redis_server.url)
    second = await serve(redis_url=redis_server.url)
    producer, jti = issued("producer", "main")
    assert (await second.get("/api/v1/inputs", headers=bearer(producer))).status == 200
    assert (await first.post("/api/v1/tokens/revoke", json={"jti": jti}, headers=OPS)).status == 200
    assert (await first.get("/api/v1/inputs", headers=bearer(producer))).status == 401  # at once
    statuses = []
    for _ in range(30):  # the second instance refreshes every 2 s
        statuses.append((await second.get("/api/v1/inputs", headers=bearer(producer))).status)
        if statuses[-1] == 401:
            break
        await asyncio.sleep(0.1)
    assert statuses[-1] == 401 and len(statuses) <= 26, statuses


def forumcast(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FORUMCAST_")}
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        env=environ | {"FORUMCAST_EVENT": str(FIXTURES / "event.yaml"), "FORUMCAST_SECRET": SECRET} | env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


async def test_cli_token_prints_its_jti_and_revokes_in_redis(serve: Serve, redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    made = forumcast("token", "--role", "producer", "--stage", "main")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    jti = made.stderr.strip().removeprefix("jti: ")
    assert TOKENS.verify(token).jti == jti and jwt.get_unverified_header(token)["kid"] == key_id(SECRET)
    other = forumcast("token", "--role", "ops").stdout.strip()

    revoked = forumcast("token", "revoke", jti, "--redis-url", redis_server.url)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == f"revoked {jti}"
    client = await serve(redis_url=redis_server.url)
    assert await error_of(await client.get("/api/v1/inputs", headers=bearer(token))) == (
        401,
        "auth.revoked_token",
    )
    # A whole token works too; the audit log has both, from the command line.
    assert forumcast("token", "revoke", other, "--redis-url", redis_server.url).returncode == 0
    entries = (await (await client.get("/api/v1/audit", headers=OPS)).json())["entries"]
    assert [(e["action"], e["who"]["role"], e["from"]) for e in entries] == [
        ("token.revoke", "cli", "cli")
    ] * 2


def test_cli_revoke_without_a_shared_store_says_where_to_go() -> None:
    done = forumcast("token", "revoke", "some-jti")
    assert done.returncode == 2
    assert "POST /api/v1/tokens/revoke" in done.stderr and "Traceback" not in done.stderr
    assert "in-memory store" in forumcast("token", "revoke", "--help").stdout
    missing = forumcast("token")
    assert missing.returncode == 2 and "--role is required" in missing.stderr


async def test_rotated_secret(aiohttp_client: Any, tmp_path: Path, event: Any) -> None:
    new_secret = "rotated-secret-0123456789abcdefghijklmn"
    rotated = Tokens(new_secret, [SECRET])
    app = create_app(server_config(tmp_path), event, tokens=rotated)
    client = await aiohttp_client(app)
    old, _ = issued("producer", "main")  # signed with the previous secret
    assert (await client.get("/api/v1/inputs", headers=bearer(old))).status == 200
    new, _ = issued("producer", "main", tokens=rotated)
    assert jwt.get_unverified_header(new)["kid"] == key_id(new_secret) != key_id(SECRET)
    assert (await client.get("/api/v1/inputs", headers=bearer(new))).status == 200
    claims = jwt.decode(old, options={"verify_signature": False})
    unknown = jwt.encode(claims, "unknown-secret-0123456789abcdefghijklm", headers={"kid": "0badc0ffee00"})
    assert await error_of(await client.get("/api/v1/inputs", headers=bearer(unknown))) == (
        401,
        "auth.invalid_token",
    )
    # A known kid does not help a token signed with another key.
    forged = jwt.encode(claims, "unknown-secret-0123456789abcdefghijklm", headers={"kid": key_id(SECRET)})
    assert await error_of(await client.get("/api/v1/inputs", headers=bearer(forged))) == (
        401,
        "auth.invalid_token",
    )
    # Derived stream keys follow the new secret.
    keys = (await (await client.get("/api/v1/inputs", headers=bearer(new))).json())["inputs"]
    assert {k["id"]: k["stream_key"] for k in keys}["main-cam"] == rotated.stream_key("main-cam")
    assert rotated.stream_key("main-cam") != TOKENS.stream_key("main-cam")
