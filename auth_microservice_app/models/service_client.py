"""Confidential service clients: services that get tokens of their own (client credentials)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import TimestampMixin, UTCDateTime, uuid_pk


class ServiceClient(TimestampMixin, db.Model):  # type: ignore[name-defined]
    """One service allowed to call ``/oauth2/token`` (and, with the ``introspect`` scope,
    ``/oauth2/introspect``).

    The secret is stored only as a SHA-256 digest: it is 256 random bits, so a slow hash would
    add cost without adding strength. After a rotation the previous digest stays valid until
    ``previous_secret_expires_at``. Disabling or deleting a client sets ``tokens_revoked_at``:
    the tokens it holds are void at once, and stay void after it is enabled again. A deleted
    client stays as a tombstone while its tokens could still be presented, so their revocation
    survives a rebuild of the Redis blocklist.
    """

    __tablename__ = "service_clients"

    id: Mapped[uuid.UUID] = uuid_pk()
    client_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The scopes the client may ask for, sorted.
    scopes: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Tokens issued at or before this instant are void (set by disabling and deleting).
    tokens_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def is_usable(self) -> bool:
        return self.disabled_at is None and self.deleted_at is None

    def __repr__(self) -> str:
        return f"<ServiceClient {self.client_id}>"
