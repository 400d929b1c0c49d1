"""The state store package: picking an implementation and the JSON codec they share.

This module owns :func:`open_store` (memory when no URL is given, Redis otherwise) and the
value codec both implementations run every value through, so that "what counts as a
storable value" and "what the caller gets back" are decided in exactly one place. The
interface itself lives in :mod:`server.store.base`.

The implementations are imported lazily inside :func:`open_store`: they import the codec
from here, and a memory-only deployment never has to import redis-py.
"""

from __future__ import annotations

import json
from typing import Any

from server.store.base import Store, StoreUnavailable

__all__ = ["Store", "StoreUnavailable", "decode_value", "encode_value", "key_prefix", "open_store"]


def key_prefix(namespace: str) -> str:
    """The prefix ``forumcast:{namespace}:`` every key of a store carries.

    Both implementations use it, so a memory backend shared between stores isolates
    namespaces exactly the way one Redis database does. An empty namespace is refused:
    it would silently mix this store's keys with another deployment's.
    """
    if not namespace:
        raise ValueError("store namespace must not be empty")
    return f"forumcast:{namespace}:"


def encode_value(value: Any) -> str:
    """``value`` as compact JSON text; TypeError/ValueError if it is not JSON-compatible.

    ``allow_nan=False`` because NaN/Infinity are not JSON and other readers of the store
    (another language, ``redis-cli`` users) must be able to parse what we write.
    ``ensure_ascii=False`` keeps non-ASCII text readable (and shorter) in Redis.
    """
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def decode_value(text: str | bytes) -> Any:
    """The value encoded by :func:`encode_value` (always a fresh object)."""
    return json.loads(text)


def open_store(
    url: str | None,
    *,
    namespace: str,
    retries: int = 5,
    backoff_base: float = 0.05,
    backoff_cap: float = 1.0,
    socket_timeout: float = 2.0,
) -> Store:
    """The store for ``url``: in-process memory if it is None/empty, else Redis.

    The retry and timeout limits apply to Redis only; see
    :meth:`server.store.redis.RedisStore.from_url` for what they mean.
    """
    if not url:
        from server.store.memory import MemoryStore

        return MemoryStore(namespace)
    from server.store.redis import RedisStore

    return RedisStore.from_url(
        url,
        namespace=namespace,
        retries=retries,
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
        socket_timeout=socket_timeout,
    )
