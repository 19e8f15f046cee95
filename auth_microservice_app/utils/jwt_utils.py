"""Encoding our JWTs through Flask-JWT-Extended with the key ring's current key.

Every claim is set explicitly (``jti``, ``iat``, ``nbf``, ``exp`` included) so that a token can be
re-issued byte-for-byte equal within the refresh grace window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_jwt_extended import create_access_token, create_refresh_token

from .keys import KeyRing, load_key_ring

ACCESS = "access"
REFRESH = "refresh"


@dataclass(frozen=True)
class TokenClaims:
    """What differs between two tokens; the rest comes from configuration."""

    subject: str
    session_id: str
    jti: str
    issued_at: datetime
    email: str
    email_verified: bool
    roles: list[str]
    amr: list[str]
    fresh: bool = False


def key_ring() -> KeyRing:
    ring: KeyRing = current_app.extensions["jwt_keys"]
    return ring


def refresh_audience(audience: str) -> str:
    # Refresh tokens get their own audience so a service that checks only `aud` still never
    # mistakes one for an access token.
    return f"{audience}:refresh"


def _timestamps(issued_at: datetime, ttl: int) -> dict[str, Any]:
    iat = int(issued_at.timestamp())
    return {"iat": iat, "nbf": iat, "exp": iat + ttl}


def _common(claims: TokenClaims) -> dict[str, Any]:
    return {
        "jti": claims.jti,
        "sid": claims.session_id,
        "email": claims.email,
        "email_verified": claims.email_verified,
        "roles": claims.roles,
        "amr": claims.amr,
    }


def encode_access(claims: TokenClaims) -> str:
    config = current_app.config
    payload = {
        **_common(claims),
        **_timestamps(claims.issued_at, config["JWT_ACCESS_TOKEN_EXPIRES"]),
        "aud": config["JWT_AUDIENCE"],
    }
    return create_access_token(
        claims.subject,
        fresh=claims.fresh,
        expires_delta=False,
        additional_claims=payload,
        additional_headers={"kid": key_ring().signing.kid, "typ": "at+jwt"},
    )


def encode_refresh(claims: TokenClaims, expires_at: datetime) -> str:
    config = current_app.config
    ttl = int((expires_at - claims.issued_at).total_seconds())
    payload = {
        **_common(claims),
        **_timestamps(claims.issued_at, ttl),
        "aud": refresh_audience(config["JWT_AUDIENCE"]),
        "fresh": False,
    }
    return create_refresh_token(
        claims.subject,
        expires_delta=False,
        additional_claims=payload,
        additional_headers={"kid": key_ring().signing.kid, "typ": "JWT"},
    )


def expiry(issued_at: datetime, ttl_seconds: int) -> datetime:
    return issued_at + timedelta(seconds=ttl_seconds)


def now() -> datetime:
    """Whole seconds: JWT times have no fraction, and re-issued tokens must match exactly."""
    return datetime.now(UTC).replace(microsecond=0)


def init_app(app: Flask) -> None:
    """Load the key ring and translate our settings into Flask-JWT-Extended's."""
    generated = (
        Path(app.instance_path) / "jwt-keys"
        if app.config["APP_ENV"] in {"development", "testing"}
        else None
    )
    ring = load_key_ring(
        algorithm=app.config["JWT_ALGORITHM"],
        private_key=app.config.get("JWT_PRIVATE_KEY"),
        keys_dir=app.config.get("JWT_KEYS_DIR"),
        generated_dir=generated,
    )
    app.extensions["jwt_keys"] = ring
    audience = app.config["JWT_AUDIENCE"]
    app.config.update(
        JWT_TOKEN_LOCATION=["headers"],
        JWT_COOKIE_CSRF_PROTECT=False,  # bearer tokens only; a random csrf claim would also
        # make re-issued tokens differ
        JWT_DECODE_ALGORITHMS=ring.algorithms,
        JWT_ENCODE_ISSUER=app.config["JWT_ISSUER"],
        JWT_DECODE_ISSUER=app.config["JWT_ISSUER"],
        JWT_DECODE_AUDIENCE=[audience, refresh_audience(audience)],
        JWT_DECODE_LEEWAY=app.config["JWT_LEEWAY"],
        JWT_ENCODE_NBF=True,
        JWT_IDENTITY_CLAIM="sub",
    )
