"""The shared state store: Redis, reached through ``redis.asyncio``.

This module owns :class:`RedisStore`: how forumcast's keys and values map onto Redis,
how long we keep trying when Redis is away, and how Redis failures are reported.

Layout (``{p}`` is ``forumcast:{namespace}:``)::

    {p}{key}   string   one JSON text                  get / set
    {p}{key}   list     JSON texts in append order     append (RPUSH) / items (LRANGE)
    {p}{key}   hash     field -> integer               incr (HINCRBY) / counters (HGETALL)
    {p}{key}   set      strings                        add (SADD) / cardinality (SCARD)
    {p}{key}   hash     n -> hits, e -> window end     hit (one Lua script) / hits (HMGET)

Resilience is redis-py's own: every connection carries a ``Retry`` with exponential
backoff on ConnectionError/TimeoutError, and a broken pooled connection is dropped and
re-dialled on the next attempt. So when Redis restarts, the same store object simply
works again; nobody has to rebuild it. What is still failing after the retries is raised
as :class:`~server.store.base.StoreUnavailable` (HTTP 503), naming the URL without its
password. Using a key as the wrong kind (``get`` on a list) is a programming error and
raises TypeError, exactly as the memory store does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.store.base import Hits, StoreUnavailable
from server.store.codec import decode_value, encode_value, key_prefix
from server.store.sentinel import is_sentinel_url, sentinel_client


def _split_userinfo(url: str) -> tuple[str, str, str, str] | None:
    """``(scheme, userinfo, location, rest)`` of ``url``, or None if it has no ``://``.

    Done by hand rather than with ``urllib.parse`` because it must also work on URLs
    that do not parse (those are exactly the ones that end up in error messages). The
    user info is everything up to the *last* ``@`` of the part before ``?``/``#``, so a
    password with an unescaped ``@`` or ``/`` is still treated as a whole.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    head = re.split(r"[?#]", rest, maxsplit=1)[0]
    userinfo, _at, location = head.rpartition("@")
    return scheme, userinfo, location, rest


def _scrub(text: str, url: str) -> str:
    """``text`` with the password of ``url`` masked, should a library message quote it."""
    parts = _split_userinfo(url)
    password = parts[1].partition(":")[2] if parts else ""
    return text.replace(password, "***") if password else text


def redact_url(url: str) -> str:
    """``url`` fit for logs and error messages: password masked, query string dropped."""
    parts = _split_userinfo(url)
    if parts is None:
        # Not a URL at all; show it only if it cannot contain credentials.
        return "<redacted>" if "@" in url else url
    scheme, userinfo, location, _rest = parts
    if not userinfo:
        return f"{scheme}://{location}"
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{location}"


#: One rate-limit hit, atomically: open a new window (count 1, end ARGV[2], expiry ARGV[3] ms)
#: unless one is open at ARGV[1], else count one more; returns the count and the window's end.
#: The end is kept as the text the caller sent, so it comes back exactly (Lua numbers would not).
HIT_SCRIPT = """
local ends = redis.call('HGET', KEYS[1], 'e')
if not ends or tonumber(ARGV[1]) >= tonumber(ends) then
  redis.call('HSET', KEYS[1], 'n', 1, 'e', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, ARGV[2]}
end
return {redis.call('HINCRBY', KEYS[1], 'n', 1), ends}
"""


def _text(reply: bytes | str) -> str:
    # The client is built with decode_responses=True, so replies are str; redis-py's
    # annotations cannot know that, and a client passed to __init__ might differ.
    return reply.decode() if isinstance(reply, bytes) else reply


def connect(
    url: str,
    *,
    decode_responses: bool = True,
    retries: int = 5,
    backoff_base: float = 0.05,
    backoff_cap: float = 1.0,
    socket_timeout: float = 2.0,
) -> Redis:
    """A ``redis.asyncio`` client for ``url`` with our retry policy (see :meth:`RedisStore.from_url`).

    ``url`` is ``redis://``, ``rediss://``, ``unix://`` or ``redis+sentinel://`` (the master
    of a Sentinel-managed service, see :mod:`server.store.sentinel`).

    The store uses it with text replies; the cluster's media plane with ``decode_responses=False``
    (fragments are bytes). Nothing is dialled here; an invalid URL raises StoreUnavailable.
    """
    if retries < 0 or backoff_base < 0 or backoff_cap < 0 or socket_timeout <= 0:
        raise ValueError("retries and backoff must be >= 0 and socket_timeout > 0")
    safe = redact_url(url)
    # redis-py ignores a database it cannot parse ("redis://h/x" means db 0); refuse
    # it instead, or two deployments meant to be separate would share database 0.
    # Read from the redacted URL so no piece of a password can end up in `db`.
    db = safe.partition("://")[2].rpartition("@")[2].partition("/")[2]
    if url.startswith(("redis://", "rediss://")) and db and not db.isdigit():
        raise StoreUnavailable(f"invalid Redis URL {safe}: database {db!r} is not a number")
    retry = Retry(
        ExponentialBackoff(cap=backoff_cap, base=backoff_base),
        retries,
        supported_errors=(RedisConnectionError, RedisTimeoutError),
    )
    options: dict[str, Any] = {
        "retry": retry,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "decode_responses": decode_responses,
    }
    try:
        client: Redis = (
            sentinel_client(url, **options) if is_sentinel_url(url) else Redis.from_url(url, **options)
        )
    except ValueError as exc:
        # redis-py's messages name the problem ("Port could not be cast to integer
        # value as 'x'") but not the URL; never echo the URL unredacted.
        raise StoreUnavailable(f"invalid Redis URL {safe}: {_scrub(str(exc), url)}") from exc
    return client


class RedisStore:
    """:class:`~server.store.base.Store` on Redis; build it with :meth:`from_url`."""

    kind = "redis"

    def __init__(self, client: Redis, *, namespace: str, url: str) -> None:
        """Wrap an existing client; ``url`` is only used (redacted) in error messages."""
        self.namespace = namespace
        self.url = redact_url(url)
        # Kept only to scrub the password from library messages; never shown.
        self._raw_url = url
        self._prefix = key_prefix(namespace)
        self._client = client
        self._hit = client.register_script(HIT_SCRIPT)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str,
        retries: int = 5,
        backoff_base: float = 0.05,
        backoff_cap: float = 1.0,
        socket_timeout: float = 2.0,
    ) -> RedisStore:
        """A store on the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://`` or
        ``redis+sentinel://``).

        ``retries``: attempts after the first one, per command, on connection errors and
            timeouts (0 = fail at the first error).
        ``backoff_base``/``backoff_cap``: the n-th retry waits
            ``min(backoff_cap, backoff_base * 2**n)`` seconds; with the defaults the
            waits are 0.1, 0.2, 0.4, 0.8, 1.0 s, about 2.5 s in total.
        ``socket_timeout``: seconds to connect, and to wait for any one reply.

        With the defaults a refused connection is reported after roughly 2.5 s; a host
        that swallows packets costs up to ``(retries + 1) * socket_timeout`` more.
        Nothing is dialled here: an invalid URL raises StoreUnavailable at once, an
        unreachable server only on first use.
        """
        # Argument errors first, so nothing is left half-built (an unclosed client).
        key_prefix(namespace)
        client = connect(
            url,
            retries=retries,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            socket_timeout=socket_timeout,
        )
        return cls(client, namespace=namespace, url=url)

    def __repr__(self) -> str:
        return f"RedisStore(url={self.url!r}, namespace={self.namespace!r})"

    @contextmanager
    def _translate(self, key: str | None = None) -> Iterator[None]:
        """Turn redis-py errors into the store's: TypeError for misuse, else StoreUnavailable."""
        try:
            yield
        except ResponseError as exc:
            if str(exc).startswith("WRONGTYPE"):
                raise TypeError(f"store key {key!r} holds another kind of data: {exc}") from exc
            # Anything else the server refuses (OOM, READONLY replica, ...) means it
            # cannot serve us right now.
            raise self._unavailable(exc) from exc
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        detail = _scrub(str(exc), self._raw_url)
        cause = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return StoreUnavailable(f"Redis store at {self.url} is unavailable: {cause}")

    async def ping(self) -> None:
        with self._translate():
            await self._client.ping()

    async def get(self, key: str) -> Any | None:
        with self._translate(key):
            text = await self._client.get(self._prefix + key)
        return None if text is None else decode_value(text)

    async def set(self, key: str, value: Any) -> None:
        text = encode_value(value)
        with self._translate(key):
            await self._client.set(self._prefix + key, text)

    async def delete(self, key: str) -> None:
        with self._translate(key):
            await self._client.delete(self._prefix + key)

    async def append(self, key: str, value: Any) -> int:
        text = encode_value(value)
        with self._translate(key):
            length: int = await self._client.rpush(self._prefix + key, text)
        return length

    async def items(self, key: str) -> list[Any]:
        with self._translate(key):
            texts = await self._client.lrange(self._prefix + key, 0, -1)
        return [decode_value(text) for text in texts]

    async def incr(self, key: str, field: str, by: int = 1) -> int:
        # Checked here so both stores reject 1.5 or True with the same TypeError.
        if isinstance(by, bool) or not isinstance(by, int):
            raise TypeError(f"counter increment must be an int, not {type(by).__name__}")
        with self._translate(key):
            value: int = await self._client.hincrby(self._prefix + key, field, by)
        return value

    async def counters(self, key: str) -> dict[str, int]:
        with self._translate(key):
            raw = await self._client.hgetall(self._prefix + key)
        return {_text(field): int(value) for field, value in raw.items()}

    async def add(self, key: str, member: str) -> bool:
        # Checked here because redis-py would turn 1 into "1"; the memory store refuses it.
        if not isinstance(member, str):
            raise TypeError(f"set members must be str, not {type(member).__name__}")
        with self._translate(key):
            added: int = await self._client.sadd(self._prefix + key, member)
        return added == 1

    async def cardinality(self, key: str) -> int:
        with self._translate(key):
            size: int = await self._client.scard(self._prefix + key)
        return size

    async def hit(self, key: str, *, window: float, now: float) -> Hits:
        if window <= 0:
            raise ValueError(f"a rate-limit window must be positive, got {window}")
        # The expiry only frees memory (on Redis' real clock); the window itself follows `now`.
        expire_ms = math.ceil(window * 1000) + 1000
        with self._translate(key):
            count, ends = await self._hit(
                keys=[self._prefix + key], args=[repr(now), repr(now + window), expire_ms]
            )
        return Hits(int(count), float(ends))

    async def hits(self, key: str, *, now: float) -> Hits:
        with self._translate(key):
            count, ends = await self._client.hmget(self._prefix + key, ["n", "e"])
        if ends is None or count is None or now >= float(ends):
            return Hits(0, now)
        return Hits(int(count), float(ends))

    async def close(self) -> None:
        with self._translate():
            await self._client.aclose()
