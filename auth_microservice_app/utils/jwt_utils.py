"""Our JWTs through Flask-JWT-Extended: encoded with the key ring's current key, decoded once.

Every claim is set explicitly (``jti``, ``iat``, ``nbf``, ``exp`` included) so that a token can be
re-issued byte-for-byte equal within the refresh grace window.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import jwt as pyjwt
from flask import Flask, current_app
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token
from flask_jwt_extended.exceptions import JWTDecodeError
from jwt.utils import base64url_decode

from .keys import KeyError_, KeyRing, load_key_ring

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
    """The keys this app signs and verifies with.

    :raises KeyError_: the app was started for a CLI command without a usable key (see
        :func:`init_app`), and this command needs one.
    """
    ring: KeyRing | None = current_app.extensions["jwt_keys"]
    if ring is None:
        raise current_app.extensions["jwt_keys_error"]
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


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, decoded from the first segment only: just enough to pick the key.

    PyJWT checks the whole token again (the header included) when it verifies the signature.
    """
    from ..errors import TokenInvalid  # errors -> extensions -> this module

    try:
        header = json.loads(base64url_decode(token.partition(".")[0]))
    except (ValueError, TypeError, binascii.Error):  # bad base64, bytes, JSON, UTF-8
        raise TokenInvalid() from None
    if not isinstance(header, dict):
        raise TokenInvalid()
    return header


@dataclass(frozen=True)
class DecodeSettings:
    audience: list[str]
    issuer: str
    leeway: int


_VERIFY = {"verify_sub": True}
_VERIFY_EXPIRED = {"verify_sub": True, "verify_exp": False}


def verify(token: str, *, allow_expired: bool = False) -> dict[str, Any]:
    """A token of ours, verified: signature (by ``kid``), ``iss``, ``aud``, ``exp``/``nbf``.

    The key decides the algorithm, never the token: an RSA kid with alg ES256 (or HS256 with
    the public key as the secret) is refused before any signature math. Access tokens must be
    typed ``at+jwt`` (RFC 9068).

    :raises TokenInvalid: no such kid, or the alg is not the key's.
    :raises jwt.PyJWTError: as PyJWT decides (Flask-JWT-Extended's handlers answer them);
        an ``ExpiredSignatureError`` carries ``jwt_header``/``jwt_data`` as Flask-JWT-Extended's
        expired-token callback expects.
    """
    from ..errors import TokenInvalid

    header = unverified_header(token)
    key = key_ring().by_kid.get(str(header.get("kid", "")))
    if key is None or header.get("alg") != key.algorithm:
        raise TokenInvalid()
    settings: DecodeSettings = current_app.extensions["jwt_decode"]
    try:
        claims: dict[str, Any] = pyjwt.decode(
            token,
            key.public_key,
            algorithms=[key.algorithm],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway,
            options=_VERIFY_EXPIRED if allow_expired else _VERIFY,  # type: ignore[arg-type]
        )
    except pyjwt.ExpiredSignatureError as error:
        error.jwt_header = header  # type: ignore[attr-defined]
        error.jwt_data = verify(token, allow_expired=True)  # type: ignore[attr-defined]
        raise
    if claims.get("type") == ACCESS and header.get("typ") != "at+jwt":
        raise TokenInvalid()
    if "sub" not in claims:
        raise JWTDecodeError("Missing claim: sub")
    # Flask-JWT-Extended's defaults for claims a token may leave out
    claims.setdefault("type", ACCESS)
    claims.setdefault("fresh", False)
    claims.setdefault("jti", None)
    return claims


class SinglePassJWTManager(JWTManager):
    """Flask-JWT-Extended, verifying each token with one PyJWT decode instead of three.

    Its own ``_decode_jwt_from_config`` decodes the claims unverified, then the header, then
    the whole token verified; PyJWT validates every character of the token in Python on each
    pass. cProfile put that at a fifth of ``GET /me``'s CPU. Everything else (the error
    callbacks, the blocklist check, freshness, ``get_jwt``) stays Flask-JWT-Extended's.
    """

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: str | None = None, allow_expired: bool = False
    ) -> dict[str, Any]:
        return verify(encoded_token, allow_expired=allow_expired)


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
    try:
        ring: KeyRing | None = load_key_ring(
            algorithm=app.config["JWT_ALGORITHM"],
            private_key=app.config.get("JWT_PRIVATE_KEY"),
            keys_dir=app.config.get("JWT_KEYS_DIR"),
            generated_dir=generated,
        )
    except KeyError_ as exc:
        # A `flask ...` command (a click context is active while Flask's CLI loads the app)
        # may be the one that makes the first key: it must start without one. Everything
        # else (gunicorn, `python -m`) refuses to start.
        if click.get_current_context(silent=True) is None:
            raise
        ring = None
        app.extensions["jwt_keys_error"] = exc
    app.extensions["jwt_keys"] = ring
    audience = app.config["JWT_AUDIENCE"]
    app.extensions["jwt_decode"] = DecodeSettings(
        audience=[audience, refresh_audience(audience)],
        issuer=app.config["JWT_ISSUER"],
        leeway=int(app.config["JWT_LEEWAY"]),
    )
    app.config.update(
        JWT_TOKEN_LOCATION=["headers"],
        JWT_COOKIE_CSRF_PROTECT=False,  # bearer tokens only; a random csrf claim would also
        # make re-issued tokens differ
        JWT_DECODE_ALGORITHMS=ring.algorithms if ring else [app.config["JWT_ALGORITHM"]],
        JWT_ENCODE_ISSUER=app.config["JWT_ISSUER"],
        JWT_DECODE_ISSUER=app.config["JWT_ISSUER"],
        JWT_DECODE_AUDIENCE=[audience, refresh_audience(audience)],
        JWT_DECODE_LEEWAY=app.config["JWT_LEEWAY"],
        JWT_ENCODE_NBF=True,
        JWT_IDENTITY_CLAIM="sub",
    )
