from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import TimestampMixin, UTCDateTime, uuid_pk


class User(TimestampMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(200))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    roles: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["user"], nullable=False)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def two_factor_enabled(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<User {self.id}>"


# Unique whatever the letter case: Alice@x.io and alice@x.io are one account.
Index("uq_users_email_lower", func.lower(User.email), unique=True)
