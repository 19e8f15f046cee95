"""Second factor: the TOTP credential, its backup codes, and pending sign-in challenges."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import TimestampMixin, UTCDateTime, utcnow, uuid_pk


class TwoFactorCredential(TimestampMixin, db.Model):  # type: ignore[name-defined]
    """A user's TOTP secret: pending while ``enabled_at`` is empty, then the second factor."""

    __tablename__ = "two_factor_credentials"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: ``kid:nonce:ciphertext`` (see utils/encryption.py), never the secret itself.
    secret_ciphertext: Mapped[str] = mapped_column(String(255), nullable=False)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The newest TOTP time step accepted; a code of this step or an older one is a replay.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def is_enabled(self) -> bool:
        return self.enabled_at is not None


class BackupCode(db.Model):  # type: ignore[name-defined]
    """One single-use recovery code, stored as an argon2id hash."""

    __tablename__ = "two_factor_backup_codes"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    code_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    #: ``kid:hex``, a keyed 16-bit hash of the code (crypto.EncryptionKeyRing.lookup_hint): a
    #: typed code is checked against the one hash it can match, not against all ten.
    lookup_hint: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MfaChallengeRecord(db.Model):  # type: ignore[name-defined]
    """An ``mfa_token`` handed out after a first factor; ``used_at`` makes it single use."""

    __tablename__ = "mfa_challenges"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    amr: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
