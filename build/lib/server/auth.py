"""Signed bearer tokens and the roles they carry.

Tokens are JWTs (HS256) with ``role``, an optional ``stage`` or ``exhibit`` scope, ``iat``,
``exp`` and a random ``jti`` (what a revocation names, :mod:`server.revocations`); the header's
``kid`` is a short hash of the secret that signed it, so a rotated secret (the old one kept in
``previous_secrets``) leaves the tokens it signed valid until they expire. Roles:

* ``producer`` — runs a stage (``stage`` = one stage id, or ``*`` for every stage);
* ``ops`` — reads operational endpoints;
* ``exhibitor:{id}`` — manages one exhibit;
* ``viewer:{stage}`` — an invitation to watch a closed-door stage.

A missing, malformed, badly signed or expired token (or one whose ``kid`` names no secret we
hold) is a 401; a valid token without the needed role is a 403. Both carry the JSON error
body of :mod:`server.errors`.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
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
    jti: str = ""  # empty for tokens issued before tokens carried one (they cannot be revoked)
    expires: int = 0  # the token's exp, seconds since the epoch

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


def key_id(secret: str) -> str:
    """The ``kid`` of tokens signed with ``secret``: a short hash that does not reveal it."""
    return sha256(f"forumcast-kid:{secret}".encode()).hexdigest()[:12]


class Tokens:
    """Issues tokens with one secret and verifies them with it or with a previous one."""

    def __init__(self, secret: str, previous: Sequence[str] = ()) -> None:
        for key in (secret, *previous):
            if len(key.encode()) < 32:  # RFC 7518 3.2: an HS256 key has at least 256 bits
                raise ValueError("the token secret must be at least 32 bytes long")
        self._secret = secret
        self.kid = key_id(secret)
        # The current secret last, so a previous one equal to it cannot shadow it.
        self._secrets = {key_id(key): key for key in (*previous, secret)}

    @staticmethod
    def random_secret() -> str:
        return secrets.token_urlsafe(32)

    def stream_key(self, input_id: str) -> str:
        """The stream key of an input that has none configured: an HMAC of the secret."""
        digest = hmac.new(self._secret.encode(), f"forumcast-stream-key:{input_id}".encode(), sha256)
        return digest.hexdigest()[:32]

    def pseudonym(self, name: str) -> str:
        """A stable stand-in for a name that must not be shown (same secret, same stand-in)."""
        digest = hmac.new(self._secret.encode(), f"forumcast-pseudonym:{name}".encode(), sha256)
        return digest.hexdigest()[:10]

    def sign(self, purpose: str, value: str) -> str:
        """A URL-safe HMAC-SHA256 of ``value`` under the secret (22 characters, 132 bits).

        ``purpose`` is part of what is signed, so a signature made for one purpose never
        passes for another (a visitor id is not a stream key).
        """
        digest = hmac.new(self._secret.encode(), f"forumcast-{purpose}:{value}".encode(), sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:22]

    def issue(self, role: str, *, stage: str | None = None, ttl: timedelta, subject: str = "") -> str:
        return self.issue_with_id(role, stage=stage, ttl=ttl, subject=subject)[0]

    def issue_with_id(
        self, role: str, *, stage: str | None = None, ttl: timedelta, subject: str = ""
    ) -> tuple[str, str]:
        """A new token and its ``jti`` (what ``forumcast token revoke`` takes)."""
        name, scope = parse_role(role, stage)
        now = int(time.time())
        jti = secrets.token_hex(12)  # hex: never starts with "-", which a command line takes for a flag
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "role": name,
            "iat": now,
            "exp": now + int(ttl.total_seconds()),
            "jti": jti,
        }
        if scope is not None:
            claims["scope"] = scope
        if subject:
            claims["sub"] = subject
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM, headers={"kid": self.kid}), jti

    def _signing_secret(self, token: str) -> str:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise AuthError("auth.invalid_token", f"invalid token: {exc}") from None
        except UnicodeError:  # a header's undecodable bytes arrive as surrogates
            raise AuthError("auth.invalid_token", "invalid token: not ASCII") from None
        if kid is None:  # issued before tokens carried a kid: only the current secret may have signed it
            return self._secret
        if not isinstance(kid, str) or kid not in self._secrets:
            raise AuthError(
                "auth.invalid_token", "invalid token: signed with a key this server does not hold"
            )
        return self._secrets[kid]

    def verify(self, token: str, *, allow_expired: bool = False) -> Principal:
        """The principal of a well-signed token (``allow_expired``: also after its expiry)."""
        try:
            claims = jwt.decode(
                token,
                self._signing_secret(token),
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "role"], "verify_exp": not allow_expired},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("auth.expired_token", "the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError("auth.invalid_token", f"invalid token: {exc}") from None
        except UnicodeError:  # a header's undecodable bytes arrive as surrogates, which PyJWT cannot encode
            raise AuthError("auth.invalid_token", "invalid token: not ASCII") from None
        role, scope, jti = claims.get("role"), claims.get("scope"), claims.get("jti", "")
        if role not in ("producer", "ops", "exhibitor", "viewer") or not (
            scope is None or isinstance(scope, str)
        ):
            raise AuthError("auth.invalid_token", "invalid token: unknown role")
        if not isinstance(jti, str):
            raise AuthError("auth.invalid_token", "invalid token: 'jti' must be a string")
        return Principal(role, scope, str(claims.get("sub", "")), jti, int(claims["exp"]))


class SignedIds:
    """Anonymous ids signed by the server, told apart from invented ones without storing any.

    An id is 16 random URL-safe characters and 22 of their HMAC (``sign``, e.g.
    ``Tokens.sign`` bound to a purpose), optionally bound to a ``scope`` (a stage: an id
    handed out for one is refused for another). Instances sharing the token secret accept
    each other's ids; a new random secret (none configured) makes earlier ids invalid.
    """

    NONCE = 16
    MAC = 22

    def __init__(self, sign: Callable[[str], str]) -> None:
        self._sign = sign

    def new(self, scope: str = "") -> str:
        nonce = secrets.token_urlsafe(12)  # 12 bytes -> 16 characters
        return nonce + self._mac(nonce, scope)

    def valid(self, value: str, scope: str = "") -> bool:
        if len(value) != self.NONCE + self.MAC:
            return False
        nonce, mac = value[: self.NONCE], value[self.NONCE :]
        return secrets.compare_digest(mac, self._mac(nonce, scope))

    def _mac(self, nonce: str, scope: str) -> str:
        return self._sign(f"{scope}:{nonce}" if scope else nonce)


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
