"""Tokens and roles (server/auth.py); the HTTP outcomes are in tests/http/test_access.py."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from server.auth import Tokens, bearer, parse_role, parse_ttl
from server.errors import AuthError

TOKENS = Tokens("unit-secret-0123456789abcdefghijklmnop")


def test_roles_and_scopes() -> None:
    producer = TOKENS.verify(TOKENS.issue("producer", stage="main", ttl=timedelta(minutes=5)))
    assert producer.can_produce("main") and not producer.can_produce("hydrogen")
    assert producer.can_watch("main") and not producer.is_ops
    everything = TOKENS.verify(TOKENS.issue("producer", ttl=timedelta(minutes=5)))
    assert everything.scope == "*" and everything.can_produce("hydrogen")
    viewer = TOKENS.verify(TOKENS.issue("viewer:battery-seminar", ttl=timedelta(minutes=5)))
    assert viewer.can_watch("battery-seminar") and not viewer.can_watch("main")
    assert not viewer.can_produce("battery-seminar")
    exhibitor = TOKENS.verify(TOKENS.issue("exhibitor:h2-tank", ttl=timedelta(minutes=5)))
    assert exhibitor.can_exhibit("h2-tank") and not exhibitor.can_exhibit("pv")
    assert TOKENS.verify(TOKENS.issue("ops", ttl=timedelta(minutes=5))).is_ops


@pytest.mark.parametrize(
    ("role", "stage"), [("admin", None), ("viewer", None), ("ops", "main"), ("exhibitor:x", "m")]
)
def test_unknown_roles_are_refused(role: str, stage: str | None) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        parse_role(role, stage)


def test_expired_forged_and_garbage_tokens() -> None:
    expired = jwt.encode(
        {"iss": "forumcast", "role": "ops", "iat": 1, "exp": 2},
        "unit-secret-0123456789abcdefghijklmnop",
        algorithm="HS256",
    )
    with pytest.raises(AuthError) as caught:
        TOKENS.verify(expired)
    assert caught.value.code == "auth.expired_token" and caught.value.wire.http == 401
    forged = Tokens("another-secret-0123456789abcdefghijklmnop").issue("ops", ttl=timedelta(minutes=5))
    with pytest.raises(AuthError) as caught:
        TOKENS.verify(forged)
    assert caught.value.code == "auth.invalid_token"
    with pytest.raises(AuthError):
        TOKENS.verify("not.a.token")
    unsigned = jwt.encode({"iss": "forumcast", "role": "ops", "iat": 1, "exp": 2**40}, None, algorithm="none")
    with pytest.raises(AuthError):
        TOKENS.verify(unsigned)


def test_bearer_header_forms() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer(None, "xyz") == "xyz"
    with pytest.raises(AuthError) as caught:
        bearer(None)
    assert caught.value.code == "auth.missing_token"
    with pytest.raises(AuthError):
        bearer("Basic dXNlcg==")


def test_ttl_parsing() -> None:
    assert parse_ttl("8h") == timedelta(hours=8)
    assert parse_ttl("90s") == timedelta(seconds=90)
    for bad in ("8", "0h", "1w", "h"):
        with pytest.raises(ValueError, match="duration"):
            parse_ttl(bad)


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Tokens("short")


def test_key_ids_and_previous_secrets() -> None:
    old = Tokens("old-secret-0123456789abcdefghijklmnopq")
    rotated = Tokens("new-secret-0123456789abcdefghijklmnopq", ["old-secret-0123456789abcdefghijklmnopq"])
    token, jti = old.issue_with_id("ops", ttl=timedelta(minutes=5), subject="ann")
    assert jwt.get_unverified_header(token)["kid"] == old.kid != rotated.kid
    who = rotated.verify(token)
    assert (who.role, who.subject, who.jti) == ("ops", "ann", jti) and len(jti) >= 16
    assert rotated.verify(rotated.issue("ops", ttl=timedelta(minutes=5))).is_ops
    with pytest.raises(AuthError) as caught:  # the old server does not know the new key
        old.verify(rotated.issue("ops", ttl=timedelta(minutes=5)))
    assert caught.value.code == "auth.invalid_token"
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Tokens("new-secret-0123456789abcdefghijklmnopq", ["short"])
    # Tokens made before tokens carried a kid or a jti still verify with the current secret.
    legacy = jwt.encode(
        {"iss": "forumcast", "role": "ops", "iat": 1, "exp": 2**40}, "unit-secret-0123456789abcdefghijklmnop"
    )
    assert TOKENS.verify(legacy).jti == ""
