"""The state store package: :func:`open_store` picks an implementation.

Memory when no URL is given, Redis otherwise. The interface lives in
:mod:`server.store.base`, the value codec both implementations share in
:mod:`server.store.codec`.
"""

from __future__ import annotations

from pathlib import Path

from server.store.base import Store, StoreUnavailable
from server.store.codec import decode_value, encode_value, key_prefix
from server.store.memory import MemoryBackend, MemoryStore
from server.store.redis import RedisStore

__all__ = ["Store", "StoreUnavailable", "decode_value", "encode_value", "key_prefix", "open_store"]


def open_store(
    url: str | None,
    *,
    namespace: str,
    retries: int = 5,
    backoff_base: float = 0.05,
    backoff_cap: float = 1.0,
    socket_timeout: float = 2.0,
    snapshot_file: Path | None = None,
) -> Store:
    """The store for ``url``: in-process memory if it is None/empty (kept in ``snapshot_file``
    when given), else Redis.

    The retry and timeout limits apply to Redis only; see
    :meth:`server.store.redis.RedisStore.from_url` for what they mean.
    """
    if not url:
        return MemoryStore(namespace, backend=MemoryBackend(snapshot_file=snapshot_file))
    return RedisStore.from_url(
        url,
        namespace=namespace,
        retries=retries,
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
        socket_timeout=socket_timeout,
    )
