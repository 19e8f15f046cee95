"""The password policy (NIST SP 800-63B) and what a new password must pass."""

from __future__ import annotations

import gzip
import unicodedata
from functools import lru_cache
from importlib import resources

from flask import current_app

from ..errors import WeakPassword
from ..utils.breach_check import is_breached


class PolicyViolation(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def normalize_password(password: str) -> str:
    """NFKC, so the same password typed on two keyboards hashes the same; never truncated."""
    return unicodedata.normalize("NFKC", password)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """About 20,000 common passwords (Royce Williams' list, as shipped by Django)."""
    data = resources.files("auth_microservice_app.data").joinpath("common-passwords.txt.gz")
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip())


def check_password_policy(password: str, *, email: str, min_length: int, max_length: int) -> None:
    """Length in code points after NFKC, not in a common list, not built from the email.

    No composition rules (SP 800-63B 3.1.1.2).

    :raises PolicyViolation: with a machine-readable ``reason``.
    """
    normalized = normalize_password(password)
    length = len(normalized)
    if length < min_length:
        raise PolicyViolation("too_short", f"Use at least {min_length} characters.")
    if length > max_length:
        raise PolicyViolation("too_long", f"Use at most {max_length} characters.")
    lowered = normalized.lower()
    if lowered in common_passwords():
        raise PolicyViolation("common", "This password is too common.")
    local_part = email.rsplit("@", 1)[0].lower()
    if len(local_part) >= 3 and local_part in lowered:
        raise PolicyViolation("contains_email", "Do not use your email address in the password.")


def validate_new_password(password: str, email: str) -> str:
    """The normalised password, if policy allows it.

    :raises WeakPassword: with ``details.reason`` (too_short, too_long, common, contains_email,
        breached).
    """
    config = current_app.config
    try:
        check_password_policy(
            password,
            email=email,
            min_length=config["PASSWORD_MIN_LENGTH"],
            max_length=config["PASSWORD_MAX_LENGTH"],
        )
    except PolicyViolation as violation:
        raise WeakPassword(
            violation.message, details={"password": [violation.message], "reason": violation.reason}
        ) from None
    normalized = normalize_password(password)
    url = config.get("PASSWORD_BREACH_CHECK_URL")
    if url and is_breached(
        normalized, range_url=url, timeout=config["PASSWORD_BREACH_CHECK_TIMEOUT"]
    ):
        message = "This password has appeared in a data breach."
        raise WeakPassword(message, details={"password": [message], "reason": "breached"})
    return normalized
