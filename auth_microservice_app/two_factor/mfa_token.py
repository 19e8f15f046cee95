"""The ``mfa_token``: a short-lived JWT that names a pending second-factor challenge.

It is signed with the key ring's signing key like every token of ours, but carries its own
audience (``<JWT_AUDIENCE>:mfa``) and ``type: mfa``. Flask-JWT-Extended accepts only the access
and refresh audiences, so every ``@jwt_required`` endpoint refuses it; only
:func:`decode` here accepts it, with PyJWT directly, the algorithm pinned to the key its ``kid``
names.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jwt
from flask import current_app

from ..errors import TokenExpired, TokenInvalid
from ..utils.jwt_utils import key_ring

MFA = "mfa"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "type", "amr"]


def audience() -> str:
    return f"{current_app.config['JWT_AUDIENCE']}:mfa"


def encode(*, subject: str, jti: str, amr: list[str], issued_at: datetime) -> str:
    """Sign an ``mfa_token`` valid for ``MFA_TOKEN_TTL`` seconds from ``issued_at``."""
    signing = key_ring().signing
    iat = int(issued_at.timestamp())
    claims = {
        "iss": current_app.config["JWT_ISSUER"],
        "aud": audience(),
        "sub": subject,
        "iat": iat,
        "nbf": iat,
        "exp": iat + int(current_app.config["MFA_TOKEN_TTL"]),
        "jti": jti,
        "type": MFA,
        "amr": amr,
    }
    return jwt.encode(
        claims,
        signing.private_key,
        algorithm=signing.algorithm,
        headers={"kid": signing.kid, "typ": "JWT"},
    )


def expires_at(issued_at: datetime) -> datetime:
    return issued_at + timedelta(seconds=int(current_app.config["MFA_TOKEN_TTL"]))


def decode(token: str) -> dict[str, Any]:
    """The claims of a valid ``mfa_token`` (signature, ``kid``, issuer, audience, times, type).

    :raises TokenExpired: past ``exp``.
    :raises TokenInvalid: anything else wrong, including an access or refresh token.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenInvalid() from None
    key = key_ring().by_kid.get(str(header.get("kid", "")))
    if key is None or header.get("alg") != key.algorithm:
        raise TokenInvalid()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=[key.algorithm],
            audience=audience(),
            issuer=current_app.config["JWT_ISSUER"],
            leeway=int(current_app.config["JWT_LEEWAY"]),
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except jwt.PyJWTError:
        raise TokenInvalid() from None
    if claims.get("type") != MFA or not isinstance(claims.get("amr"), list):
        raise TokenInvalid()
    return claims
