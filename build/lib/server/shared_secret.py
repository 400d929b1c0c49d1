"""One token secret for every instance sharing a Redis, when none is configured.

The first instance to start makes a random secret and stores it with ``SET NX`` under the
event's namespace (``forumcast:<event>:auth:secret``, a JSON string like every store
value); every other one, and every restart, reads the same. So a token printed by one
instance (and every derived stream key) is valid on all of them, across restarts, for as
long as the Redis keeps its data. Whoever can read that Redis can sign tokens: configure
``secret`` (and keep the Redis private) in production.
"""

from __future__ import annotations

from redis.exceptions import RedisError

from server.auth import Tokens
from server.store.base import StoreUnavailable
from server.store.codec import decode_value, encode_value, key_prefix
from server.store.redis import connect, redact_url

#: The store key (under the event's prefix) that holds the generated secret.
SECRET_KEY = "auth:secret"  # noqa: S105 (the key's name, not a password)


async def shared_secret(url: str, namespace: str) -> str:
    """The secret kept in the Redis at ``url`` for ``namespace``, made now if there is none.

    Raises StoreUnavailable if the Redis cannot be reached (after the usual retries).
    """
    key = key_prefix(namespace) + SECRET_KEY
    client = connect(url)
    try:
        await client.set(key, encode_value(Tokens.random_secret()), nx=True)
        stored = await client.get(key)
    except (RedisError, OSError) as exc:
        # The class only: a library message might quote the URL with its password.
        where = redact_url(url)
        cause = type(exc).__name__
        raise StoreUnavailable(f"cannot read the shared secret from Redis at {where}: {cause}") from exc
    finally:
        await client.aclose()
    secret = decode_value(stored) if stored is not None else None
    if not isinstance(secret, str) or len(secret.encode()) < 32:
        where = redact_url(url)
        raise StoreUnavailable(f"the shared secret {key!r} in Redis at {where} is not a valid secret")
    return secret
