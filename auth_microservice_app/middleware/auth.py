"""Access-token checks in Flask-JWT-Extended: key by ``kid``, revocation, one error envelope."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g

from ..errors import error_response
from ..extensions import jwt
from ..utils.jwt_utils import ACCESS, key_ring
from ..utils.keys import PrivateKey, PublicKey


def _error(code: str, message: str) -> Response:
    return error_response(401, code, message)


def _encode_key(_identity: Any) -> PrivateKey:
    return key_ring().signing.private_key


def _decode_key(header: dict[str, Any], payload: dict[str, Any]) -> PublicKey:
    from ..errors import TokenInvalid

    key = key_ring().by_kid.get(str(header.get("kid", "")))
    # The key decides the algorithm, never the token: an RSA kid with alg ES256 (or HS256 with
    # the public key as the secret) is refused here, before any signature math.
    if key is None or header.get("alg") != key.algorithm:
        raise TokenInvalid()
    if payload.get("type") == ACCESS and header.get("typ") != "at+jwt":
        raise TokenInvalid()
    return key.public_key


def _is_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    from ..auth.revocation import is_revoked

    g.user_id = payload.get("sub")
    return is_revoked(str(payload.get("jti", "")), str(payload.get("sid", "")))


def init_app(app: Flask) -> None:
    jwt.encode_key_loader(_encode_key)
    jwt.decode_key_loader(_decode_key)
    jwt.token_in_blocklist_loader(_is_revoked)
    jwt.unauthorized_loader(
        lambda _reason: _error("authorization_required", "An access token is required.")
    )
    jwt.invalid_token_loader(lambda _reason: _error("token_invalid", "The token is invalid."))
    jwt.expired_token_loader(lambda _h, _p: _error("token_expired", "The token has expired."))
    jwt.revoked_token_loader(lambda _h, _p: _error("token_revoked", "The token has been revoked."))
    jwt.needs_fresh_token_loader(
        lambda _h, _p: _error("fresh_token_required", "A fresh sign-in is required.")
    )
    jwt.token_verification_failed_loader(
        lambda _h, _p: _error("token_invalid", "The token is invalid.")
    )
