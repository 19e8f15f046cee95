"""Have-I-Been-Pwned-style k-anonymity range check: only 5 hex characters of the SHA-1 leave us."""

from __future__ import annotations

import hashlib
import logging

import requests

logger = logging.getLogger(__name__)


def is_breached(password: str, *, range_url: str, timeout: float) -> bool:
    """True when the range API lists the password; False when it does not, or cannot answer.

    An outage must never block sign-up, so every failure reads as "not breached" (and is logged).
    """
    digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
    prefix, suffix = digest[:5], digest[5:]
    try:
        response = requests.get(
            f"{range_url.rstrip('/')}/{prefix}", timeout=timeout, headers={"Add-Padding": "true"}
        )
        response.raise_for_status()
    except requests.RequestException as exc:
        logger.warning("breach check unavailable", extra={"error_type": type(exc).__name__})
        return False
    for line in response.text.splitlines():
        candidate, _, count = line.strip().partition(":")
        if candidate.upper() == suffix and count.strip() not in {"", "0"}:
            return True
    return False
