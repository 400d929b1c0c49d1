"""The client's address behind a trusted front (server/http/forwarded.py): the pure walk of
``X-Forwarded-For``, and the per-address limits of a real app keyed by it only when the
connection comes from a listed proxy."""

from __future__ import annotations

from typing import Any

import pytest

from server.config import load_config
from server.errors import ConfigError
from server.http.forwarded import client_address, parse_networks
from tests.conftest import Serve

FRONT = parse_networks(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("127.0.0.1", ["203.0.113.7"], "203.0.113.7"),  # the front saw the client
        ("127.0.0.1", ["198.51.100.1, 203.0.113.7"], "203.0.113.7"),  # a forged entry on the left
        ("127.0.0.1", ["203.0.113.7, 10.1.2.3"], "203.0.113.7"),  # two fronts in a row
        ("127.0.0.1", ["203.0.113.7", "10.1.2.3"], "203.0.113.7"),  # the header twice
        ("127.0.0.1", ["10.1.2.3"], "10.1.2.3"),  # only proxies: the farthest one
        ("127.0.0.1", ["garbage, 203.0.113.7"], "203.0.113.7"),
        ("127.0.0.1", ["203.0.113.7, garbage"], "127.0.0.1"),  # cannot vouch past garbage
        ("127.0.0.1", ["[2001:db8::5]:443"], "2001:db8::5"),
        ("127.0.0.1", ["203.0.113.7:5123"], "203.0.113.7"),
        ("127.0.0.1", [], "127.0.0.1"),
        ("192.0.2.50", ["203.0.113.7"], "192.0.2.50"),  # not a listed front: header ignored
        ("::ffff:127.0.0.1", ["203.0.113.7"], "203.0.113.7"),  # v4-mapped peer
        ("fd00::1", ["2001:db8::9"], "2001:db8::9"),
        (None, ["203.0.113.7"], None),
    ],
)
def test_client_address(peer: str | None, headers: list[str], expected: str | None) -> None:
    assert client_address(peer, headers, FRONT) == expected


def test_no_trusted_proxies_means_the_header_is_never_read() -> None:
    assert client_address("127.0.0.1", ["203.0.113.7"], ()) == "127.0.0.1"


def test_a_bad_network_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"trusted_proxies.*'10\.0\.0\.300/8' is not an IP address"):
        load_config(None, env={"FORUMCAST_TRUSTED_PROXIES": "127.0.0.1,10.0.0.300/8"})
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_config(None, overrides={"trusted_proxies": [5]}, env={})
    config = load_config(None, env={"FORUMCAST_TRUSTED_PROXIES": "127.0.0.1, fd00::/8"})
    assert config.trusted_proxies == ["127.0.0.1", "fd00::/8"]


async def viewer_ids(client: Any, address: str, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        response = await client.post("/live/main/viewer-id", headers={"X-Forwarded-For": address})
        statuses.append(response.status)
        await response.release()
    return statuses


async def test_viewer_ids_are_limited_per_client_behind_a_trusted_front(serve: Serve) -> None:
    client = await serve(trusted_proxies=["127.0.0.1"])
    first = await viewer_ids(client, "203.0.113.7", 31)
    assert first[:30] == [201] * 30 and first[30] == 429
    # another client behind the same front is not held back by the first one's ids
    assert await viewer_ids(client, "203.0.113.8", 3) == [201] * 3


async def test_without_trusted_proxies_a_forged_header_buys_nothing(serve: Serve) -> None:
    client = await serve()
    first = await viewer_ids(client, "203.0.113.7", 30)
    assert first == [201] * 30
    assert await viewer_ids(client, "203.0.113.8", 1) == [429]  # the same peer: 127.0.0.1


async def test_websocket_admission_per_client_behind_a_trusted_front(serve: Serve) -> None:
    client = await serve(trusted_proxies=["127.0.0.1"], max_viewers_per_ip=2)
    held = []
    for address in ("203.0.113.7", "203.0.113.7", "203.0.113.8", "203.0.113.8"):
        held.append(await client.ws_connect("/ws/watch/main", headers={"X-Forwarded-For": address}))
    response = await client.get(
        "/ws/watch/main",
        headers={
            "X-Forwarded-For": "203.0.113.7",
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert response.status == 429
    await response.release()
    for ws in held:
        assert not ws.closed
        await ws.close()
