"""The value codec of every store, and the key prefix: decided in exactly one place.

Both implementations run every value through :func:`encode_value` / :func:`decode_value`, so
"what counts as a storable value" and "what the caller gets back" are the same on memory
and Redis, and prefix every key with :func:`key_prefix`.
"""

from __future__ import annotations

import json
from typing import Any


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
