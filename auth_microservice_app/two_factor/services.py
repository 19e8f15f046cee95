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
import uuid
from dataclasses import dataclass
from typing import Any, NoReturn

from flask import current_app
from flask.sansio.app import App
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .. import audit
from ..audit import Event
from ..errors import (
    AuthenticationFailed,
    Conflict,
    FreshTokenRequired,
    InvalidMfaCode,
    RateLimited,
    ServiceUnavailable,
    TokenInvalid,
    ValidationFailed,
)
from ..extensions import db
from ..identity import challenges, ownership, throttle, tokens
from ..identity.hashing import hash_password, verify_password
from ..identity.passwords import normalize_password
from ..identity.sessions import ClientInfo, TokenPair, revoke_other_sessions, start_session
from ..identity.users import get_active_user
from ..mail.notifications import security_notice
from ..models.two_factor import BackupCode, MfaChallengeRecord, TwoFactorCredential
from ..utils import encryption
from . import totp

logger = logging.getLogger(__name__)
METHODS = ("totp", "backup_code")
DEVELOPMENT_ENVS = {"development", "testing"}


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


def init_app(app: App) -> None:
    """Parse ``TOTP_ENCRYPTION_KEYS`` at start-up, so a bad value fails now, not at first use.

    :raises encryption.KeyRingError: a malformed value outside development and testing (staging and
        production refuse it earlier, in ``BaseConfig.validate``).
    """
    app.extensions["totp_keys"] = encryption.load_key_ring(
        app.config["TOTP_ENCRYPTION_KEYS"],
        allow_passphrase=app.config["APP_ENV"] in DEVELOPMENT_ENVS,
    )


def encryption_keys() -> encryption.EncryptionKeyRing:
    ring: encryption.EncryptionKeyRing = current_app.extensions["totp_keys"]
    return ring


def _associated_data(user_id: uuid.UUID) -> str:
    return f"totp-secret:{user_id}"


#: Seconds a client is told to wait when a secret cannot be decrypted: an operator must act.
UNDECRYPTABLE_RETRY_AFTER = "60"


def _secret(credential: TwoFactorCredential) -> str:
    """The TOTP secret in clear.

    :raises ServiceUnavailable: it is under a key no longer in ``TOTP_ENCRYPTION_KEYS`` (or
        corrupt): the user is not at fault, an operator has to restore the key, so 503 with a
        log line that says which key, never 500.
    """
    try:
        return encryption_keys().decrypt(
            credential.secret_ciphertext, associated_data=_associated_data(credential.user_id)
        )
    except encryption.DecryptionError as exc:
        db.session.rollback()
        logger.error(  # noqa: TRY400 - an operator's task, not a bug: no traceback
            "TOTP secret cannot be decrypted: restore its key in TOTP_ENCRYPTION_KEYS",
            extra={"user_id": str(credential.user_id), "key_id": _kid(credential), "why": str(exc)},
        )
        raise ServiceUnavailable(
            "Two-factor verification is unavailable right now. Try again later.",
            headers={"Retry-After": UNDECRYPTABLE_RETRY_AFTER},
        ) from None


def _kid(credential: TwoFactorCredential) -> str:
    return credential.secret_ciphertext.partition(":")[0]


def secrets_without_a_key() -> dict[str, int]:
    """Secrets under a key id that ``TOTP_ENCRYPTION_KEYS`` no longer lists: kid -> count.

    Their users cannot pass (or turn off) 2FA until the key is put back.
    """
    ring = encryption_keys()
    counts: dict[str, int] = {}
    for stored in db.session.execute(select(TwoFactorCredential.secret_ciphertext)).scalars():
        kid = stored.partition(":")[0]
        if kid not in ring.keys:
            counts[kid] = counts.get(kid, 0) + 1
    return counts


def count_secrets_without_a_key() -> int:
    """How many secrets no configured key can decrypt: one counting scan, for start-up."""
    column = TwoFactorCredential.secret_ciphertext
    under_known_keys = or_(
        *(column.startswith(f"{kid}:", autoescape=True) for kid in encryption_keys().keys)
    )
    return int(
        db.session.execute(
            select(func.count()).select_from(TwoFactorCredential).where(~under_known_keys)
        ).scalar_one()
    )


def warn_about_secrets_without_a_key(app: App) -> None:
    """Log a warning at start-up when TOTP secrets are under keys no longer configured.

    Best effort: a database that is down or not migrated yet is not this check's business.
    """
    with app.app_context():  # type: ignore[attr-defined]
        try:
            count = count_secrets_without_a_key()
        except SQLAlchemyError:
            db.session.rollback()
            return
        finally:
            db.session.remove()
    if count:
        logger.warning(
            "TOTP secrets under keys no longer in TOTP_ENCRYPTION_KEYS: their users cannot "
            "pass two-factor; restore the keys, then run `flask two-factor rotate-key`",
            extra={"credentials": count},
        )


# --- reading ---------------------------------------------------------------------------------


def status(user_id: str) -> TwoFactorStatus:
    """Whether 2FA is on, and how many unused backup codes are left.

    :raises TokenInvalid, AccountDisabled: see :func:`..auth.services.get_active_user`.
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


def _credential(user_id: uuid.UUID) -> TwoFactorCredential | None:
    """The user's credential row, locked for this transaction and freshly read."""
    return db.session.execute(
        select(TwoFactorCredential)
        .where(TwoFactorCredential.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _enabled_credential(user_id: uuid.UUID) -> TwoFactorCredential:
    credential = _credential(user_id)
    if credential is None or not credential.is_enabled:
        db.session.rollback()
        raise Conflict("Two-factor authentication is not enabled.")
    return credential


# --- spending codes --------------------------------------------------------------------------


def _spend_totp(credential: TwoFactorCredential, code: str) -> bool:
    step = totp.matching_step(_secret(credential), code, at=time.time())
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


def _spend_code(credential: TwoFactorCredential, code: str) -> str | None:
    """``"totp"`` or ``"backup_code"`` once the code is spent; None if it is not (or no longer)
    valid. Six digits are a TOTP code, anything else is tried as a backup code."""
    if totp.normalize_totp_code(code) is not None:
        return "totp" if _spend_totp(credential, code) else None
    return "backup_code" if _spend_backup_code(credential.user_id, code) else None


def _refuse_code(user_id: uuid.UUID, email: str, action: str, *, counted: str) -> NoReturn:
    """Roll back and answer 401; the wrong code counts toward both throttle counts.

    ``counted`` is the count whose reservation already holds this attempt.
    """
    db.session.rollback()
    other = throttle.ACCOUNT if counted == throttle.CODES else throttle.CODES
    throttle.record_failure(email, other)
    audit.record(Event.MFA_CODE_REJECTED, user_id=user_id, action=action)
    raise InvalidMfaCode()


def _replace_backup_codes(user_id: uuid.UUID) -> list[str]:
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


def begin_setup(user_id: str, *, qr_format: str = "png") -> TotpSetup:
    """Create a new TOTP secret for the user, pending until :func:`enable`.

    Setting up again before enabling replaces the pending secret (the old one stops working).

    :raises Conflict: 2FA is already enabled (disable it first), or a concurrent setup won.
    :raises EmailNotVerified: the account's address is not proven (see :mod:`..auth.ownership`).
    :raises TokenInvalid, AccountDisabled: see :func:`..auth.services.get_active_user`.
    """
    user = get_active_user(user_id)
    ownership.require_verified(user, "set up two-factor authentication")
    email, uid = user.email, user.id
    secret = totp.new_secret()
    ciphertext = encryption_keys().encrypt(secret, associated_data=_associated_data(uid))
    credential = _credential(uid)
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
    :raises TokenInvalid, AccountDisabled: see :func:`..auth.services.get_active_user`.
    Side effects: queues the ``two_factor_enabled`` notice.
    """
    user = get_active_user(user_id)
    ownership.require_verified(user, "turn on two-factor authentication")
    uid = user.id
    credential = _credential(uid)
    if credential is None:
        db.session.rollback()
        raise Conflict("No two-factor setup is pending: call POST /api/v1/2fa/setup first.")
    if credential.is_enabled:
        db.session.rollback()
        raise Conflict("Two-factor authentication is already enabled.")
    step = totp.matching_step(_secret(credential), code, at=time.time())
    if step is None or not _activate(credential, step):
        db.session.rollback()
        audit.record(Event.TWO_FACTOR_ENABLE_FAILED, user_id=uid)
        raise InvalidMfaCode()
    codes = _replace_backup_codes(uid)
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

    :raises Conflict: 2FA is not enabled.
    :raises ValidationFailed: the account has a password and none was sent.
    :raises FreshTokenRequired: no password on the account, and the token is not fresh.
    :raises RateLimited: the account is in a brute-force wait (see :mod:`..auth.throttle`).
    :raises AuthenticationFailed: wrong password (counts as a failure).
    :raises InvalidMfaCode: wrong or already used code (counts as a failure).
    :raises TokenInvalid, AccountDisabled: see :func:`..auth.services.get_active_user`.
    Side effects: queues the ``two_factor_disabled`` notice.
    """
    user = get_active_user(user_id)
    email, uid, password_hash = user.email, user.id, user.password_hash
    credential = _enabled_credential(uid)
    _check_reauthentication(password_hash, password, fresh)
    throttle.reserve(email)
    with throttle.returned_if_unchecked(email):
        if password_hash is not None and not verify_password(
            password_hash, normalize_password(password or "")
        ):
            db.session.rollback()
            audit.record(Event.TWO_FACTOR_DISABLE_FAILED, user_id=uid, reason="invalid_credentials")
            raise AuthenticationFailed("The password is incorrect.")
        method = _spend_code(credential, code)
    if method is None:
        _refuse_code(uid, email, "disable", counted=throttle.ACCOUNT)
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
    :raises TokenInvalid, AccountDisabled: see :func:`..auth.services.get_active_user`.
    """
    user = get_active_user(user_id)
    email, uid = user.email, user.id
    credential = _enabled_credential(uid)
    throttle.reserve(email)
    with throttle.returned_if_unchecked(email):
        method = _spend_code(credential, code)
    if method is None:
        _refuse_code(uid, email, "backup_codes", counted=throttle.ACCOUNT)
    codes = _replace_backup_codes(uid)
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
    credential = _credential(uid)
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
        method = _spend_code(credential, code)
    if method is None:
        _refuse_code(uid, email, "sign_in", counted=throttle.CODES)
    amr = [*first_factor, *(["otp"] if "otp" not in first_factor else [])]
    pair = start_session(user, client, amr=amr)  # commits challenge, code and session together
    throttle.succeeded(email, throttle.ACCOUNT, throttle.CODES)
    audit.record(Event.MFA_SUCCEEDED, user_id=uid, method=method)
    return pair


def reencrypt_secrets() -> tuple[int, int]:
    """Re-encrypt every TOTP secret not under the first ``TOTP_ENCRYPTION_KEYS`` key, and commit.

    Returns (re-encrypted, total). Each row is rewritten only if unchanged since it was read, so
    a concurrent setup is never overwritten with an older secret. Secrets under a key no longer
    configured are left as they are (see :func:`secrets_without_a_key`).
    """
    ring = encryption_keys()
    rows = db.session.execute(
        select(TwoFactorCredential.user_id, TwoFactorCredential.secret_ciphertext)
    ).all()
    changed = 0
    for user_id, stored in rows:
        kid = stored.partition(":")[0]
        if kid == ring.primary or kid not in ring.keys:
            continue
        associated = _associated_data(user_id)
        fresh = ring.encrypt(
            ring.decrypt(stored, associated_data=associated), associated_data=associated
        )
        result = db.session.execute(
            update(TwoFactorCredential)
            .where(
                TwoFactorCredential.user_id == user_id,
                TwoFactorCredential.secret_ciphertext == stored,
            )
            .values(secret_ciphertext=fresh)
            .execution_options(synchronize_session=False)
        )
        changed += int(result.rowcount)  # type: ignore[attr-defined]
    db.session.commit()
    return changed, len(rows)
