"""OAuth identities linked to users, and the short-lived server-side state of OAuth flows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import TimestampMixin, UTCDateTime, utcnow, uuid_pk


class OAuthAccount(TimestampMixin, db.Model):  # type: ignore[name-defined]
    """One provider identity (``provider`` + its stable ``subject``) linked to one local user.

    A user has at most one account per provider; an identity belongs to at most one user.
    """

    __tablename__ = "oauth_accounts"
    __table_args__ = (
        UniqueConstraint("provider", "subject", name="uq_oauth_accounts_provider_subject"),
        UniqueConstraint("user_id", "provider", name="uq_oauth_accounts_user_id_provider"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    #: The provider's user id (OIDC ``sub``, GitHub's numeric id): never the email, which changes.
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<OAuthAccount {self.provider} {self.id}>"


class OAuthState(db.Model):  # type: ignore[name-defined]
    """A single-use value (authorization ``state``, one-time ``code``) while Redis is down.

    Redis holds these normally; this table is the fallback. ``key`` is a SHA-256 of the secret,
    so a database read never yields a usable state or code.
    """

    __tablename__ = "oauth_states"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
