"""Two-factor rules: enrolment, backup codes, turning it off, and the second sign-in step.

Each public function is one unit of work: it commits once, or rolls back and raises.

Every one-time thing is spent by one conditional ``UPDATE`` whose ``WHERE`` still holds only for
the first spender: a TOTP step (``last_used_step < :step``), a backup code (``used_at IS NULL``)
and an ``mfa_token`` challenge (``used_at IS NULL AND expires_at > now``). Of concurrent attempts
exactly one sees ``rowcount == 1``; the others fail, and nothing is ever read and then written.

Functions that change a credential first lock its row (``SELECT ... FOR UPDATE``), always before
any challenge or backup-code row, so concurrent requests of one user queue instead of deadlocking.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..audit import Event
from ..errors import (
    AuthenticationFailed,
    Conflict,
    FreshTokenRequired,
    InvalidMfaCode,
    RateLimited,
    TokenInvalid,
    ValidationFailed,
)
from ..extensions import db
from ..identity import challenges, ownership, throttle, tokens
from ..identity.hashing import verify_password
from ..identity.passwords import normalize_password
from ..identity.sessions import ClientInfo, TokenPair, revoke_other_sessions, start_session
from ..identity.signin import roles_requiring_two_factor
from ..identity.users import get_active_user
from ..mail.notifications import security_notice
from ..models.two_factor import BackupCode, MfaChallengeRecord, TwoFactorCredential
from . import totp
from .codes import credential_of, enabled_credential, refuse_code, replace_backup_codes, spend_code
from .secrets import associated_data, encryption_keys, secret_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TwoFactorStatus:
    enabled: bool
    backup_codes_remaining: int


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    otpauth_uri: str
    qr_code: str


# --- keys ------------------------------------------------------------------------------------


def status(user_id: str) -> TwoFactorStatus:
    """Whether 2FA is on, and how many unused backup codes are left.

    :raises TokenInvalid, AccountDisabled: see :func:`..identity.users.get_active_user`.
    """
    user = get_active_user(user_id)
    if not user.two_factor_enabled:
        return TwoFactorStatus(enabled=False, backup_codes_remaining=0)
    remaining = db.session.scalar(
        select(func.count())
        .select_from(BackupCode)
        .where(BackupCode.user_id == user.id, BackupCode.used_at.is_(None))
    )
    return TwoFactorStatus(enabled=True, backup_codes_remaining=int(remaining or 0))


def begin_setup(user_id: str, *, qr_format: str = "png") -> TotpSetup:
    """Create a new TOTP secret for the user, pending until :func:`enable`.

    Setting up again before enabling replaces the pending secret (the old one stops working).

    :raises Conflict: 2FA is already enabled (disable it first), or a concurrent setup won.
    :raises EmailNotVerified: the account's address is not proven (see :mod:`..auth.ownership`).
    :raises TokenInvalid, AccountDisabled: see :func:`..identity.users.get_active_user`.
    """
    user = get_active_user(user_id)
    ownership.require_verified(user, "set up two-factor authentication")
    email, uid = user.email, user.id
    secret = totp.new_secret()
    ciphertext = encryption_keys().encrypt(secret, associated_data=associated_data(uid))
    credential = credential_of(uid)
    if credential is not None and credential.is_enabled:
        db.session.rollback()
        raise Conflict("Two-factor authentication is already enabled.")
    if credential is None:
        db.session.add(TwoFactorCredential(user_id=uid, secret_ciphertext=ciphertext))
    else:
        credential.secret_ciphertext = ciphertext
        credential.last_used_step = None
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent first setup inserted the row first
        db.session.rollback()
        raise Conflict("Two-factor setup changed meanwhile; try again.") from None
    audit.record(Event.TWO_FACTOR_SETUP_STARTED, user_id=uid)
    uri = totp.provisioning_uri(secret, account=email, issuer=current_app.config["TOTP_ISSUER"])
    return TotpSetup(secret=secret, otpauth_uri=uri, qr_code=totp.QR_RENDERERS[qr_format](uri))


def enable(user_id: str, code: str) -> list[str]:
    """Turn 2FA on with a current code of the pending secret; returns 10 backup codes (shown once).

    The code's time step is recorded as used, so it cannot sign in afterwards. Not throttled:
    whoever can call this already holds the secret it checks.

    :raises Conflict: no pending setup, or 2FA is already enabled.
    :raises InvalidMfaCode: the code does not match; 2FA stays off.
    :raises EmailNotVerified: the account's address is not proven (see :mod:`..auth.ownership`).
    :raises TokenInvalid, AccountDisabled: see :func:`..identity.users.get_active_user`.
    Side effects: queues the ``two_factor_enabled`` notice.
    """
    user = get_active_user(user_id)
    ownership.require_verified(user, "turn on two-factor authentication")
    uid = user.id
    credential = credential_of(uid)
    if credential is None:
        db.session.rollback()
        raise Conflict("No two-factor setup is pending: call POST /api/v1/2fa/setup first.")
    if credential.is_enabled:
        db.session.rollback()
        raise Conflict("Two-factor authentication is already enabled.")
    step = totp.matching_step(secret_of(credential), code, at=time.time())
    if step is None or not _activate(credential, step):
        db.session.rollback()
        audit.record(Event.TWO_FACTOR_ENABLE_FAILED, user_id=uid)
        raise InvalidMfaCode()
    codes = replace_backup_codes(uid)
    security_notice(uid, "two_factor_enabled")
    db.session.commit()
    audit.record(Event.TWO_FACTOR_ENABLED, user_id=uid)
    return codes


def _activate(credential: TwoFactorCredential, step: int) -> bool:
    result = db.session.execute(
        update(TwoFactorCredential)
        .where(
            TwoFactorCredential.user_id == credential.user_id,
            TwoFactorCredential.enabled_at.is_(None),
            # the secret the code was checked against, not one a concurrent setup put there
            TwoFactorCredential.secret_ciphertext == credential.secret_ciphertext,
            or_(
                TwoFactorCredential.last_used_step.is_(None),
                TwoFactorCredential.last_used_step < step,
            ),
        )
        .values(enabled_at=tokens.now(), last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def disable(user_id: str, session_id: str, password: str | None, code: str, *, fresh: bool) -> None:
    """Turn 2FA off after re-checking the user: the password and a code (TOTP or backup code);
    for an account without a password (OAuth or magic link only), a fresh sign-in (``fresh``:
    the access token comes from a sign-in, not a refresh) and a code.

    Deletes the secret, the backup codes and pending challenges, and revokes every other session
    of the user (this one stays valid).

    :raises Conflict: 2FA is not enabled, or a role of the user requires it.
    :raises ValidationFailed: the account has a password and none was sent.
    :raises FreshTokenRequired: no password on the account, and the token is not fresh.
    :raises RateLimited: the account is in a brute-force wait (see :mod:`..auth.throttle`).
    :raises AuthenticationFailed: wrong password (counts as a failure).
    :raises InvalidMfaCode: wrong or already used code (counts as a failure).
    :raises TokenInvalid, AccountDisabled: see :func:`..identity.users.get_active_user`.
    Side effects: queues the ``two_factor_disabled`` notice.
    """
    user = get_active_user(user_id)
    required_by = roles_requiring_two_factor(user)
    if required_by:
        raise Conflict(f"The role {required_by[0]!r} requires two-factor authentication.")
    email, uid, password_hash = user.email, user.id, user.password_hash
    credential = enabled_credential(uid)
    _check_reauthentication(password_hash, password, fresh)
    throttle.reserve(email)
    with throttle.returned_if_unchecked(email):
        if password_hash is not None and not verify_password(
            password_hash, normalize_password(password or "")
        ):
            db.session.rollback()
            audit.record(Event.TWO_FACTOR_DISABLE_FAILED, user_id=uid, reason="invalid_credentials")
            raise AuthenticationFailed("The password is incorrect.")
        method = spend_code(credential, code)
    if method is None:
        refuse_code(uid, email, "disable", counted=throttle.ACCOUNT)
    db.session.execute(delete(BackupCode).where(BackupCode.user_id == uid))
    db.session.execute(delete(MfaChallengeRecord).where(MfaChallengeRecord.user_id == uid))
    db.session.execute(delete(TwoFactorCredential).where(TwoFactorCredential.user_id == uid))
    security_notice(uid, "two_factor_disabled")
    revoked = revoke_other_sessions(uid, session_id, "two_factor_disabled")  # commits it all
    throttle.succeeded(email)
    audit.record(Event.TWO_FACTOR_DISABLED, user_id=uid, sessions_revoked=revoked)


def _check_reauthentication(password_hash: str | None, password: str | None, fresh: bool) -> None:
    """What proves the user besides the code: their password, or (without one) a fresh sign-in.

    A password sent for an account that has none is simply wrong, as before.
    """
    if password_hash is not None and password is None:
        db.session.rollback()
        raise ValidationFailed(details={"password": ["Missing data for required field."]})
    if password_hash is None and password is None and not fresh:
        db.session.rollback()
        raise FreshTokenRequired(
            "This account has no password: sign in again, then turn two-factor off."
        )
    if password_hash is None and password is not None:
        db.session.rollback()
        raise AuthenticationFailed("The password is incorrect.")


def regenerate_backup_codes(user_id: str, code: str) -> list[str]:
    """Replace the user's backup codes after a code (TOTP or backup code); the old ones are void.

    :raises Conflict: 2FA is not enabled.
    :raises RateLimited: the account is in a brute-force wait.
    :raises InvalidMfaCode: wrong or already used code (counts as a failure).
    :raises TokenInvalid, AccountDisabled: see :func:`..identity.users.get_active_user`.
    """
    user = get_active_user(user_id)
    email, uid = user.email, user.id
    credential = enabled_credential(uid)
    throttle.reserve(email)
    with throttle.returned_if_unchecked(email):
        method = spend_code(credential, code)
    if method is None:
        refuse_code(uid, email, "backup_codes", counted=throttle.ACCOUNT)
    codes = replace_backup_codes(uid)
    db.session.commit()
    throttle.succeeded(email)
    audit.record(Event.BACKUP_CODES_REGENERATED, user_id=uid)
    return codes


# --- the second sign-in step -----------------------------------------------------------------


def verify(token: str, code: str, client: ClientInfo) -> TokenPair:
    """Finish a sign-in with the second factor: spend the challenge and the code, open a session.

    Challenge, code and the new session are committed together. A wrong code spends nothing (the
    ``mfa_token`` stays usable until it expires) but counts toward the account throttle and
    toward a code-only count, which alone can make this step wait. The
    session's ``amr`` is the first factor's plus ``otp``.

    :raises TokenInvalid: not an ``mfa_token`` of ours, already used, unknown, or 2FA was turned
        off since.
    :raises TokenExpired: the ``mfa_token`` expired.
    :raises RateLimited: the account is in a brute-force wait.
    :raises InvalidMfaCode: wrong or already used code.
    :raises AccountDisabled: the account was disabled after the first factor.
    """
    claims = tokens.decode(token, expected_type=tokens.MFA)
    user = get_active_user(str(claims["sub"]))
    email, uid = user.email, user.id
    credential = credential_of(uid)
    if credential is None or not credential.is_enabled:
        db.session.rollback()
        raise TokenInvalid()
    first_factor = challenges.spend_challenge(str(claims["jti"]), uid)
    if first_factor is None:
        db.session.rollback()
        raise TokenInvalid()
    # Only code failures can stop this step: wrong passwords sent by someone else must not lock
    # the owner out of every sign-in path (magic links and OAuth end here too). A refusal
    # rolls back, so the challenge stays unspent.
    try:
        throttle.reserve(email, throttle.CODES)
    except RateLimited:
        db.session.rollback()
        raise
    with throttle.returned_if_unchecked(email, throttle.CODES):
        method = spend_code(credential, code)
    if method is None:
        refuse_code(uid, email, "sign_in", counted=throttle.CODES)
    amr = [*first_factor, *(["otp"] if "otp" not in first_factor else [])]
    pair = start_session(user, client, amr=amr)  # commits challenge, code and session together
    throttle.succeeded(email, throttle.ACCOUNT, throttle.CODES)
    audit.record(Event.MFA_SUCCEEDED, user_id=uid, method=method)
    return pair
