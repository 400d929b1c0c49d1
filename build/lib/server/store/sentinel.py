"""Redis behind Sentinel: the ``redis+sentinel://`` URL and the client that follows the master.

The form (one or more sentinels, the monitored service's name, an optional database)::

    redis+sentinel://[[user]:password@]host[:port][,host2[:port2]...]/service_name[/db]

``port`` defaults to 26379 (Sentinel's). The user and password, if given, are the Redis
master's (and its replicas'); the sentinels themselves are asked without credentials. Only
the master is used: every command goes to whichever server the sentinels name as master
right now. After a failover, a connection to the old master fails (refused, or ``READONLY``
once it is demoted) and redis-py's sentinel connection asks the sentinels again on the next
attempt; our retry policy (see :func:`server.store.redis.connect`) makes that attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

SCHEME = "redis+sentinel://"
#: Sentinel's own port, used when a host names none.
SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SCHEME)


def parse_sentinel_url(url: str) -> SentinelURL:
    """The parts of ``url``; ValueError (naming the part, never the password) if it is malformed."""
    if not is_sentinel_url(url):
        raise ValueError(f"a Sentinel URL starts with {SCHEME}")
    rest = url[len(SCHEME) :]
    if "?" in rest or "#" in rest:
        raise ValueError("a Sentinel URL takes no query string or fragment")
    # The user info ends at the last "@" before the path, so a password may contain "@".
    userinfo, _, hosts_and_path = rest.rpartition("@")
    location, _, path = hosts_and_path.partition("/")
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(item) for item in location.split(","))
    service, _, db = path.partition("/")
    if not service:
        raise ValueError("a Sentinel URL must name the service after the hosts: .../service_name[/db]")
    if db and not db.isdigit():
        raise ValueError(f"database {db!r} is not a number")
    return SentinelURL(sentinels, unquote(service), int(db or 0), username, password)


def _host_port(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [::1]:26379
        host, _, tail = item[1:].partition("]")
        port = tail.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host:
        raise ValueError("a Sentinel URL needs at least one host[:port] (comma-separated)")
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"sentinel port {port!r} is not a port number")
    return host, int(port or SENTINEL_PORT)


class SentinelRedis(Redis):
    """The master's client, which also closes the connections to the sentinels it asks."""

    asks: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            if self.asks is not None:
                await self.asks.aclose()


def sentinel_client(url: str, **connection: Any) -> Redis:
    """A client of the master the sentinels of ``url`` name; ``connection`` are redis-py's
    connection arguments (retry, timeouts, decode_responses). Nothing is dialled here."""
    parsed = parse_sentinel_url(url)
    asking: dict[str, Any] = {
        key: connection[key] for key in ("socket_timeout", "socket_connect_timeout") if key in connection
    }
    sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=asking)
    client = sentinel.master_for(
        parsed.service,
        redis_class=SentinelRedis,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        **connection,
    )
    assert isinstance(client, SentinelRedis)
    client.asks = sentinel
    return client
