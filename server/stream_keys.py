"""Publishers' credentials: the stream key of every input, and the constant-time check.

A key is the configured one (``[stream_keys]`` in the settings) or, for an input without
one, derived from the token secret (:meth:`server.auth.Tokens.stream_key`), so every
instance sharing the secret agrees on it without storing anything.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from server.auth import Tokens
from server.errors import ForumcastError


class StreamKeys:
    def __init__(self, tokens: Tokens, configured: Mapping[str, str] | None = None) -> None:
        self._tokens = tokens
        self._configured = dict(configured or {})

    def key(self, input_id: str) -> str:
        return self._configured.get(input_id) or self._tokens.stream_key(input_id)

    def matches(self, input_id: str, key: str | None) -> bool:
        # surrogatepass: undecodable header bytes arrive as surrogates; they never match a key.
        offered = str(key).encode("utf-8", "surrogatepass")
        return bool(key) and hmac.compare_digest(offered, self.key(input_id).encode())

    def check(self, input_id: str, key: str | None) -> None:
        """Raise ``live.bad_key`` unless ``key`` is the input's stream key."""
        if not self.matches(input_id, key):
            raise ForumcastError("live.bad_key", f"wrong or missing stream key for input {input_id!r}")
