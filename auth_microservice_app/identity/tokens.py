"""Every token this service signs and the one place that verifies them.

Kinds: access (``typ: at+jwt``, audience ``JWT_AUDIENCE``), service (a client-credentials
token, RFC 9068 like access, ``sub`` = ``client_id``, with ``scope``), refresh
(``<aud>:refresh``) and the second-factor challenge (``<aud>:mfa``). All are signed by the key
ring's current key, and all are verified by :func:`decode`: the key is chosen by ``kid`` and
decides the algorithm (never the token's ``alg``), then one PyJWT decode checks signature,
issuer, audience and times.

Encoding goes through Flask-JWT-Extended's public ``create_*_token``; every claim is set
explicitly (``jti``, ``iat``, ``nbf``, ``exp`` included) so that a token can be re-issued
byte-for-byte equal within the refresh grace window. Checking a request's access token is
:func:`..web.auth.require_token`, on :func:`decode`.
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
from flask_jwt_extended import create_access_token, create_refresh_token
from jwt.utils import base64url_decode

from ..errors import TokenExpired, TokenInvalid
from ..utils.keys import KeyError_, KeyRing, load_key_ring

ACCESS = "access"
REFRESH = "refresh"
MFA = "mfa"
SERVICE = "service"
#: A token that can only enrol a second factor (``REQUIRE_2FA_FOR_ROLES``), never a session.
ENROLL = "enroll"
#: Kinds a resource server is shown (RFC 9068 access tokens): they share the audience.
RESOURCE_KINDS = (ACCESS, SERVICE)
#: Claims every token of each kind must carry (PyJWT's ``require``).
REQUIRED = {
    ACCESS: ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "type"],
    REFRESH: ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "type"],
    MFA: ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "type", "amr"],
    SERVICE: ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "type", "client_id", "scope"],
    ENROLL: ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "type"],
}
#: Every claim of an access token: what ``/.well-known/openid-configuration`` publishes as
#: ``claims_supported`` (and its example in ``/apispec.json``).
ACCESS_TOKEN_CLAIMS = (
    *REQUIRED[ACCESS],
    "sid",
    "fresh",
    "email",
    "email_verified",
    "roles",
    "amr",
    "client_id",
)


@dataclass(frozen=True)
class TokenClaims:
    """What differs between two session tokens; the rest comes from configuration."""

    subject: str
    session_id: str
    jti: str
    issued_at: datetime
    email: str
    email_verified: bool
    roles: list[str]
    amr: list[str]
    fresh: bool = False


@dataclass(frozen=True)
class DecodeSettings:
    audiences: dict[str, str]
    issuer: str
    leeway: int


def key_ring() -> KeyRing:
    """The keys this app signs and verifies with.

    :raises KeyError_: the app was started for a CLI command without a usable key (see
        :func:`init_app`), and this command needs one.
    """
    ring: KeyRing | None = current_app.extensions["jwt_keys"]
    if ring is None:
        raise current_app.extensions["jwt_keys_error"]
    return ring


def audience(kind: str, base: str | None = None) -> str:
    """The audience of a token kind. Refresh and MFA tokens get their own, so a service that
    checks only ``aud`` never mistakes one for an access token."""
    base = base or current_app.config["JWT_AUDIENCE"]
    return base if kind in RESOURCE_KINDS else f"{base}:{kind}"


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
        "client_id": config["FIRST_PARTY_CLIENT_ID"],  # RFC 9068: the client it was issued to
    }
    return create_access_token(
        claims.subject,
        fresh=claims.fresh,
        expires_delta=False,
        additional_claims=payload,
        additional_headers={"kid": key_ring().signing.kid, "typ": "at+jwt"},
    )


def encode_refresh(claims: TokenClaims, expires_at: datetime) -> str:
    ttl = int((expires_at - claims.issued_at).total_seconds())
    payload = {
        **_common(claims),
        **_timestamps(claims.issued_at, ttl),
        "aud": audience(REFRESH),
        "fresh": False,
    }
    return create_refresh_token(
        claims.subject,
        expires_delta=False,
        additional_claims=payload,
        additional_headers={"kid": key_ring().signing.kid, "typ": "JWT"},
    )


def _sign(kind: str, subject: str, jti: str, issued_at: datetime, ttl: int, **claims: Any) -> str:
    """A token of ``kind`` signed by the current key (every kind but access and refresh, which
    Flask-JWT-Extended encodes): the standard claims, then ``claims``."""
    signing = key_ring().signing
    payload = {
        "iss": current_app.config["JWT_ISSUER"],
        "aud": audience(kind),
        "sub": subject,
        **_timestamps(issued_at, ttl),
        "jti": jti,
        "type": kind,
        **claims,
    }
    typ = "at+jwt" if kind in RESOURCE_KINDS else "JWT"
    return pyjwt.encode(
        payload,
        signing.private_key,
        algorithm=signing.algorithm,
        headers={"kid": signing.kid, "typ": typ},
    )


def encode_mfa(*, subject: str, jti: str, amr: list[str], issued_at: datetime) -> str:
    """An ``mfa_token``: names a pending second-factor challenge for ``MFA_TOKEN_TTL`` s."""
    return _sign(MFA, subject, jti, issued_at, int(current_app.config["MFA_TOKEN_TTL"]), amr=amr)


def encode_service(*, client_id: str, scope: str, jti: str, issued_at: datetime, ttl: int) -> str:
    """A service's access token (client credentials): RFC 9068, ``sub`` = ``client_id``."""
    return _sign(SERVICE, client_id, jti, issued_at, ttl, client_id=client_id, scope=scope)


def encode_enrollment(*, subject: str, jti: str, issued_at: datetime) -> str:
    """An ``enrollment_token``: lets ``/2fa/setup`` and ``/2fa/enable`` alone act for the user,
    for ``MFA_TOKEN_TTL`` s (audience ``<aud>:enroll``)."""
    return _sign(ENROLL, subject, jti, issued_at, int(current_app.config["MFA_TOKEN_TTL"]))


def mfa_expires_at(issued_at: datetime) -> datetime:
    return issued_at + timedelta(seconds=int(current_app.config["MFA_TOKEN_TTL"]))


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, decoded from the first segment only: just enough to pick the key.

    PyJWT checks the whole token again (the header included) when it verifies the signature.

    :raises TokenInvalid: bad base64, bytes, JSON or UTF-8, or not an object.
    """
    try:
        header = json.loads(base64url_decode(token.partition(".")[0]))
    except (ValueError, TypeError, binascii.Error):
        raise TokenInvalid() from None
    if not isinstance(header, dict):
        raise TokenInvalid()
    return header


def decode(token: str, *, expected_type: str, allow_expired: bool = False) -> dict[str, Any]:
    """A token of ours of ``expected_type``, verified: the one verify path.

    The key named by ``kid`` decides the algorithm: an RSA kid with alg ES256 (or HS256 with
    the public key as the secret) is refused before any signature math. Then signature,
    issuer, the kind's audience, ``exp``/``nbf`` (with ``JWT_LEEWAY``) and required claims;
    access tokens must be typed ``at+jwt`` (RFC 9068).

    :raises TokenExpired: past ``exp`` (unless ``allow_expired``).
    :raises TokenInvalid: anything else wrong, including another kind of token.
    """
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
            audience=settings.audiences[expected_type],
            issuer=settings.issuer,
            leeway=settings.leeway,
            options={
                "require": REQUIRED[expected_type],
                "verify_exp": not allow_expired,
                "verify_sub": True,
            },
        )
    except pyjwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except pyjwt.PyJWTError:
        raise TokenInvalid() from None
    if claims.get("type") != expected_type:
        raise TokenInvalid()
    if expected_type in RESOURCE_KINDS and header.get("typ") != "at+jwt":
        raise TokenInvalid()
    if expected_type == MFA and not isinstance(claims.get("amr"), list):
        raise TokenInvalid()
    return claims


def kind_of(token: str) -> str | None:
    """The unverified ``type`` claim: only to choose which kind to verify a token as."""
    try:
        payload = json.loads(base64url_decode(token.split(".")[1]))
    except (ValueError, TypeError, IndexError, binascii.Error):
        return None
    kind = payload.get("type") if isinstance(payload, dict) else None
    return kind if isinstance(kind, str) else None


def decode_resource_token(token: str) -> dict[str, Any] | None:
    """The claims of a valid access token of ours, a user's or a service's; None otherwise.

    The unverified ``type`` claim only chooses which kind to verify as (one signature check);
    :func:`decode` then checks everything, that claim included.
    """
    kind = kind_of(token)
    if kind not in RESOURCE_KINDS:
        return None
    try:
        return decode(token, expected_type=str(kind))
    except (TokenInvalid, TokenExpired):
        return None


def decode_any(token: str) -> dict[str, Any] | None:
    """The claims of an access or refresh token of ours, expired or not; None otherwise.

    For RFC 7009 revocation, which ignores what it cannot use.
    """
    for kind in (ACCESS, REFRESH):
        try:
            return decode(token, expected_type=kind, allow_expired=True)
        except (TokenInvalid, TokenExpired):
            continue
    return None


def now() -> datetime:
    """Whole seconds: JWT times have no fraction, and re-issued tokens must match exactly."""
    return datetime.now(UTC).replace(microsecond=0)


def init_app(app: Flask) -> None:
    """Load the key ring and give Flask-JWT-Extended (which encodes) our settings."""
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
    base = app.config["JWT_AUDIENCE"]
    app.extensions["jwt_decode"] = DecodeSettings(
        audiences={kind: audience(kind, base) for kind in (ACCESS, REFRESH, MFA, SERVICE, ENROLL)},
        issuer=app.config["JWT_ISSUER"],
        leeway=int(app.config["JWT_LEEWAY"]),
    )
    app.config.update(
        JWT_TOKEN_LOCATION=["headers"],
        JWT_COOKIE_CSRF_PROTECT=False,  # bearer tokens only; a csrf claim would make
        # re-issued tokens differ
        JWT_ENCODE_ISSUER=app.config["JWT_ISSUER"],
        JWT_ENCODE_NBF=True,
        JWT_IDENTITY_CLAIM="sub",
    )
