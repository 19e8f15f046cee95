"""Flask-JWT-Extended encodes our tokens with the key ring's current key.

Verifying them is not its job here: :func:`..web.auth.require_token` on
:func:`..identity.tokens.decode` is the one verify path.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from ..extensions import jwt
from ..identity.tokens import key_ring
from ..utils.keys import PrivateKey


def _encode_key(_identity: Any) -> PrivateKey:
    return key_ring().signing.private_key


def init_app(app: Flask) -> None:
    jwt.encode_key_loader(_encode_key)
