"""Pure checks on what users type: email normalisation and the password policy (NIST SP 800-63B)."""

from __future__ import annotations

import gzip
import unicodedata
from functools import lru_cache
from importlib import resources

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 320


class PolicyViolation(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def normalize_email(value: str) -> str:
    """Trimmed, syntax-checked (no DNS), domain lower-cased and IDNA-normalised.

    :raises ValueError: when it is not a usable address.
    """
    candidate = value.strip()
    if not candidate or len(candidate) > MAX_EMAIL_LENGTH:
        raise ValueError("Not a valid email address.")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("Not a valid email address.") from None
    return str(result.normalized)


def email_key(value: str) -> str:
    """The form accounts are matched on: normalised as at sign-up, then letter case folded.

    Per-account counters (rate limits, the brute-force throttle) key on this, so
    ``Victim@ＥXAMPLE。com`` and ``victim@example.com`` share one budget, as they share one
    account. An address that does not normalise is keyed on its trimmed, lower-cased text.
    """
    try:
        return normalize_email(value).lower()
    except ValueError:
        return value.strip().lower()


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
