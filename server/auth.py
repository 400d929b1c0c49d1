"""Signed bearer tokens and the roles they carry.

Tokens are JWTs (HS256) with ``role``, an optional ``stage`` or ``exhibit`` scope, ``iat``
and ``exp``. Roles:

* ``producer`` — runs a stage (``stage`` = one stage id, or ``*`` for every stage);
* ``ops`` — reads operational endpoints;
* ``exhibitor:{id}`` — manages one exhibit;
* ``viewer:{stage}`` — an invitation to watch a closed-door stage.

A missing, malformed, badly signed or expired token is a 401; a valid token without the
needed role is a 403. Both carry the JSON error body of :mod:`server.errors`.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from hashlib import sha256
from typing import Any

import jwt

from server.errors import AuthError

ISSUER = "forumcast"
ALGORITHM = "HS256"
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> timedelta:
    """``90s``, ``30m``, ``8h``, ``2d`` → timedelta; ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"not a duration like 30m, 8h or 2d: {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    role: str  # producer | ops | exhibitor | viewer
    scope: str | None  # stage id (or "*") for producer/viewer, exhibit id for exhibitor
    subject: str = ""

    def can_produce(self, stage: str) -> bool:
        return self.role == "producer" and self.scope in ("*", stage)

    def can_watch(self, stage: str) -> bool:
        return self.can_produce(stage) or (self.role == "viewer" and self.scope == stage)

    def can_exhibit(self, exhibit: str) -> bool:
        return self.role == "exhibitor" and self.scope == exhibit

    @property
    def is_ops(self) -> bool:
        return self.role == "ops"


def parse_role(role: str, stage: str | None = None) -> tuple[str, str | None]:
    """``producer`` (+ stage), ``ops``, ``exhibitor:ID``, ``viewer:STAGE`` → (role, scope)."""
    name, _, scope = role.partition(":")
    if name == "producer" and not scope:
        return "producer", stage or "*"
    if name == "ops" and not scope and stage is None:
        return "ops", None
    if name in ("exhibitor", "viewer") and scope and stage is None:
        return name, scope
    raise ValueError(
        f"unknown role {role!r}: use producer [--stage ID], ops, exhibitor:EXHIBIT or viewer:STAGE"
    )


class Tokens:
    """Issues and verifies tokens with one secret."""

    def __init__(self, secret: str) -> None:
        if len(secret.encode()) < 32:  # RFC 7518 3.2: an HS256 key has at least 256 bits
            raise ValueError("the token secret must be at least 32 bytes long")
        self._secret = secret

    @staticmethod
    def random_secret() -> str:
        return secrets.token_urlsafe(32)

    def stream_key(self, input_id: str) -> str:
        """The stream key of an input that has none configured: an HMAC of the secret."""
        digest = hmac.new(self._secret.encode(), f"forumcast-stream-key:{input_id}".encode(), sha256)
        return digest.hexdigest()[:32]

    def sign(self, purpose: str, value: str) -> str:
        """A URL-safe HMAC-SHA256 of ``value`` under the secret (22 characters, 132 bits).

        ``purpose`` is part of what is signed, so a signature made for one purpose never
        passes for another (a visitor id is not a stream key).
        """
        digest = hmac.new(self._secret.encode(), f"forumcast-{purpose}:{value}".encode(), sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:22]

    def issue(self, role: str, *, stage: str | None = None, ttl: timedelta, subject: str = "") -> str:
        name, scope = parse_role(role, stage)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "role": name,
            "iat": now,
            "exp": now + int(ttl.total_seconds()),
        }
        if scope is not None:
            claims["scope"] = scope
        if subject:
            claims["sub"] = subject
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("auth.expired_token", "the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError("auth.invalid_token", f"invalid token: {exc}") from None
        role, scope = claims.get("role"), claims.get("scope")
        if role not in ("producer", "ops", "exhibitor", "viewer") or not (
            scope is None or isinstance(scope, str)
        ):
            raise AuthError("auth.invalid_token", "invalid token: unknown role")
        return Principal(role, scope, str(claims.get("sub", "")))


def bearer(header: str | None, query_token: str | None = None) -> str:
    """The token from ``Authorization: Bearer …`` (or a ``?token=`` fallback), or a 401."""
    if header:
        kind, _, value = header.partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            raise AuthError("auth.invalid_token", "the Authorization header must be 'Bearer <token>'")
        return value.strip()
    if query_token:
        return query_token
    raise AuthError("auth.missing_token", "this needs a token: send 'Authorization: Bearer <token>'")
