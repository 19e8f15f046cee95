"""Random identifiers and digests: the secrets the service hands out, and how it stores them."""

from __future__ import annotations

import hashlib
import secrets


def new_token_id() -> str:
    return secrets.token_urlsafe(16)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
