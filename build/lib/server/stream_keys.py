"""Publishers' credentials: the stream key of every input, its rotation, and the constant-time check.

A key is, first match wins: one rotated in through ``POST /api/v1/inputs/{input}/key/rotate``
(stored in the store at ``stream-key:{input}``, so every instance sharing the store agrees);
the configured one (``[stream_keys]`` in the settings); or one derived from the token secret
(:meth:`server.auth.Tokens.stream_key`), so instances sharing the secret agree on it without
storing anything. Rotating the secret changes the derived keys (configured and rotated keys
stay). The rotated keys are cached in memory and refreshed from the store by the supervised
task ``stream-keys``; the instance that rotates a key uses it at once. A key is checked only
when a publisher connects, so a rotation never cuts off a publisher already connected.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Mapping

from server.auth import Tokens
from server.errors import ForumcastError
from server.store.base import Store


def _store_key(input_id: str) -> str:
    return f"stream-key:{input_id}"


class StreamKeys:
    def __init__(
        self, tokens: Tokens, configured: Mapping[str, str] | None = None, *, inputs: Iterable[str] = ()
    ) -> None:
        self._tokens = tokens
        self._configured = dict(configured or {})
        self._inputs = tuple(inputs)
        self._rotated: dict[str, str] = {}
        self._fresh: dict[str, str] = {}  # rotated here while a refresh reads the store

    def key(self, input_id: str) -> str:
        return (
            self._rotated.get(input_id) or self._configured.get(input_id) or self._tokens.stream_key(input_id)
        )

    def matches(self, input_id: str, key: str | None) -> bool:
        # surrogatepass: undecodable header bytes arrive as surrogates; they never match a key.
        offered = str(key).encode("utf-8", "surrogatepass")
        return bool(key) and hmac.compare_digest(offered, self.key(input_id).encode())

    def check(self, input_id: str, key: str | None) -> None:
        """Raise ``live.bad_key`` unless ``key`` is the input's stream key."""
        if not self.matches(input_id, key):
            raise ForumcastError("live.bad_key", f"wrong or missing stream key for input {input_id!r}")

    async def rotate(self, store: Store, input_id: str) -> str:
        """A new random key for the input, stored for every instance and in force here at once."""
        key = secrets.token_hex(16)
        await store.set(_store_key(input_id), key)
        self._rotated[input_id] = self._fresh[input_id] = key
        return key

    async def refresh(self, store: Store) -> None:
        """Read every input's rotated key from the store."""
        self._fresh = {}
        rotated = {}
        for input_id in self._inputs:
            key = await store.get(_store_key(input_id))
            if isinstance(key, str) and key:
                rotated[input_id] = key
        self._rotated = rotated | self._fresh
