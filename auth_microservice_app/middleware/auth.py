"""Access-token checks in Flask-JWT-Extended: revocation and one error envelope.

The signature check itself (key by ``kid``) is :func:`..utils.jwt_utils.verify`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g

from ..errors import error_response
from ..extensions import jwt
from ..utils.jwt_utils import key_ring
from ..utils.keys import PrivateKey


def _error(code: str, message: str) -> Response:
    return error_response(401, code, message)


def _encode_key(_identity: Any) -> PrivateKey:
    return key_ring().signing.private_key


def _is_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    from ..auth.revocation import is_revoked

    g.user_id = payload.get("sub")
    return is_revoked(str(payload.get("jti", "")), str(payload.get("sid", "")))


def init_app(app: Flask) -> None:
    jwt.encode_key_loader(_encode_key)
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
