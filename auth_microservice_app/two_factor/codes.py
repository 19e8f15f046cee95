"""Spending a code once: a TOTP time step, a backup code (found by its keyed hint), and what a
wrong code costs (both throttle counts). Each spend is one conditional ``UPDATE``.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, NoReturn

from sqlalchemy import delete, or_, select, update

from .. import audit
from ..audit import Event
from ..errors import (
    Conflict,
    InvalidMfaCode,
)
from ..extensions import db
from ..identity import throttle, tokens
from ..identity.hashing import hash_password, verify_password
from ..models.two_factor import BackupCode, TwoFactorCredential
from . import totp
from .secrets import encryption_keys, secret_of

logger = logging.getLogger(__name__)


def credential_of(user_id: uuid.UUID) -> TwoFactorCredential | None:
    """The user's credential row, locked for this transaction and freshly read."""
    return db.session.execute(
        select(TwoFactorCredential)
        .where(TwoFactorCredential.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def enabled_credential(user_id: uuid.UUID) -> TwoFactorCredential:
    credential = credential_of(user_id)
    if credential is None or not credential.is_enabled:
        db.session.rollback()
        raise Conflict("Two-factor authentication is not enabled.")
    return credential


# --- spending codes --------------------------------------------------------------------------


def _spend_totp(credential: TwoFactorCredential, code: str) -> bool:
    step = totp.matching_step(secret_of(credential), code, at=time.time())
    if step is None:
        return False
    result = db.session.execute(
        update(TwoFactorCredential)
        .where(
            TwoFactorCredential.user_id == credential.user_id,
            TwoFactorCredential.enabled_at.is_not(None),
            or_(
                TwoFactorCredential.last_used_step.is_(None),
                TwoFactorCredential.last_used_step < step,
            ),
        )
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _backup_code_hint(user_id: uuid.UUID, normalized: str, kid: str | None = None) -> str:
    return encryption_keys().lookup_hint(f"{user_id}:{normalized}", kid=kid)


def _may_be(row: Any, user_id: uuid.UUID, normalized: str) -> bool:
    """Whether the code could be ``row``'s: its hint matches, or it has none we can compute
    (made before hints, or under a key no longer configured), so only argon2 can tell."""
    hint = row.lookup_hint
    kid = hint.partition(":")[0] if hint else None
    if kid is None or kid not in encryption_keys().keys:
        return True
    return bool(hint == _backup_code_hint(user_id, normalized, kid))


def _spend_backup_code(user_id: uuid.UUID, code: str) -> bool:
    normalized = totp.normalize_backup_code(code)
    if normalized is None:
        return False
    unused = db.session.execute(
        select(BackupCode.id, BackupCode.code_hash, BackupCode.lookup_hint).where(
            BackupCode.user_id == user_id, BackupCode.used_at.is_(None)
        )
    ).all()
    # Salted hashes cannot be looked up: the keyed hint picks the one worth an argon2 check,
    # so a wrong code usually costs none (it used to cost ten).
    candidates = [row for row in unused if _may_be(row, user_id, normalized)]
    match = next((r.id for r in candidates if verify_password(r.code_hash, normalized)), None)
    if match is None:
        return False
    result = db.session.execute(
        update(BackupCode)
        .where(BackupCode.id == match, BackupCode.used_at.is_(None))
        .values(used_at=tokens.now())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def spend_code(credential: TwoFactorCredential, code: str) -> str | None:
    """``"totp"`` or ``"backup_code"`` once the code is spent; None if it is not (or no longer)
    valid. Six digits are a TOTP code, anything else is tried as a backup code."""
    if totp.normalize_totp_code(code) is not None:
        return "totp" if _spend_totp(credential, code) else None
    return "backup_code" if _spend_backup_code(credential.user_id, code) else None


def refuse_code(user_id: uuid.UUID, email: str, action: str, *, counted: str) -> NoReturn:
    """Roll back and answer 401; the wrong code counts toward both throttle counts.

    ``counted`` is the count whose reservation already holds this attempt.
    """
    db.session.rollback()
    other = throttle.ACCOUNT if counted == throttle.CODES else throttle.CODES
    throttle.record_failure(email, other)
    audit.record(Event.MFA_CODE_REJECTED, user_id=user_id, action=action)
    raise InvalidMfaCode()


def replace_backup_codes(user_id: uuid.UUID) -> list[str]:
    """Void every backup code of the user and add a fresh set; returns it in clear, once."""
    db.session.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
    codes = totp.new_backup_codes()
    for code in codes:
        normalized = totp.normalize_backup_code(code)
        assert normalized is not None  # noqa: S101 - new_backup_codes only makes valid codes
        db.session.add(
            BackupCode(
                user_id=user_id,
                code_hash=hash_password(normalized),
                lookup_hint=_backup_code_hint(user_id, normalized),
            )
        )
    return codes


# --- enrolment -------------------------------------------------------------------------------


def check_code(user_id: uuid.UUID, email: str, code: str, action: str) -> None:
    """Spend one code (TOTP or backup code) of the user's enabled second factor to allow
    ``action``: the kernel's re-authentication (:mod:`..identity.reauth`) calls this.

    :raises InvalidMfaCode: wrong or already used code (rolled back, counted as a failure).
    """
    credential = enabled_credential(user_id)
    if spend_code(credential, code) is None:
        refuse_code(user_id, email, action, counted=throttle.ACCOUNT)
