"""TOTP secrets at rest: the key ring (``TOTP_ENCRYPTION_KEYS``), decrypting one, and what an
operator sees and does when a key goes (the start-up warning, ``two-factor rotate-key``).
"""

from __future__ import annotations

import logging
import uuid

from flask import current_app
from flask.sansio.app import App
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..errors import (
    ServiceUnavailable,
)
from ..extensions import db
from ..models.two_factor import TwoFactorCredential
from ..utils import encryption

logger = logging.getLogger(__name__)


DEVELOPMENT_ENVS = {"development", "testing"}


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


def associated_data(user_id: uuid.UUID) -> str:
    return f"totp-secret:{user_id}"


#: Seconds a client is told to wait when a secret cannot be decrypted: an operator must act.
UNDECRYPTABLE_RETRY_AFTER = "60"


def secret_of(credential: TwoFactorCredential) -> str:
    """The TOTP secret in clear.

    :raises ServiceUnavailable: it is under a key no longer in ``TOTP_ENCRYPTION_KEYS`` (or
        corrupt): the user is not at fault, an operator has to restore the key, so 503 with a
        log line that says which key, never 500.
    """
    try:
        return encryption_keys().decrypt(
            credential.secret_ciphertext, associated_data=associated_data(credential.user_id)
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
        associated = associated_data(user_id)
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
