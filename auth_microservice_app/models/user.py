from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, Index, String, cast, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import TimestampMixin, UTCDateTime, uuid_pk

if TYPE_CHECKING:
    from .two_factor import TwoFactorCredential


class User(TimestampMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(200))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    roles: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["user"], nullable=False)
    # Loaded on first access only (login and /me read it; refresh, logout and session lists
    # never do), never by an outer join that a `SELECT ... FOR UPDATE` of users would trip over.
    two_factor: Mapped[TwoFactorCredential | None] = relationship(lazy="select", viewonly=True)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def disabled(self) -> bool:
        return not self.is_active

    @property
    def two_factor_enabled(self) -> bool:
        return self.two_factor is not None and self.two_factor.is_enabled

    def __repr__(self) -> str:
        return f"<User {self.id}>"


# Unique whatever the letter case: Alice@x.io and alice@x.io are one account.
Index("uq_users_email_lower", func.lower(User.email), unique=True)
# The administration's listing (identity/directory.py): prefix search and cursor order. On
# PostgreSQL the migration (0009) builds them COLLATE "C" (byte order), so that one B-tree serves
# both; reflection does not show an expression's collation, so it is not repeated here.
Index("ix_users_email_search", func.lower(User.email), User.id)
Index("ix_users_name_search", func.lower(User.name), User.id)
# ``?role=`` (``roles::jsonb @> '["admin"]'``): PostgreSQL only, made by migration 0009.
Index(
    "ix_users_roles",
    cast(User.roles, JSONB),
    postgresql_using="gin",
    postgresql_ops={"anon_1": "jsonb_path_ops"},
).ddl_if(dialect="postgresql")
