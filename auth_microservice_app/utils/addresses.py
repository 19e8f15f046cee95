"""Email addresses as users type them and as accounts are matched: pure functions."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 320


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
