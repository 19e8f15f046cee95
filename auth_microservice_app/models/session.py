from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow, uuid_pk
from .user import User


class UserSession(db.Model):  # type: ignore[name-defined]
    """One sign-in: the ``sid`` claim of its tokens, with the refresh-token chain's current link."""

    __tablename__ = "user_sessions"
    #: A user's open sessions (``revoked_at IS NULL``) without reading the revoked ones: the
    #: listing and the per-user limit. Not on ``last_used_at``: every refresh writes that, and an
    #: index on it would cost each refresh its heap-only update.
    __table_args__ = (Index("ix_user_sessions_user_id_revoked_at", "user_id", "revoked_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    #: Absolute end of the session: rotation never extends it (SESSION_MAX_AGE).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    #: The one refresh token of this session that may be used next, and when it was issued.
    refresh_jti: Mapped[str] = mapped_column(String(64), nullable=False)
    access_jti: Mapped[str] = mapped_column(String(64), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    #: The token it replaced, kept for the reuse grace window.
    previous_refresh_jti: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(lazy="joined")

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
