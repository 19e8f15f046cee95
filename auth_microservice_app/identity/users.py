"""Looking accounts up, and the profile ``GET /me`` shows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..database import autocommit_connection
from ..errors import AccountDisabled, TokenInvalid
from ..extensions import db
from ..models import TwoFactorCredential, User


def find_user_by_email(email: str, *options: Any) -> User | None:
    """The account with this email in any letter case; ``options`` are loader options."""
    return db.session.execute(
        select(User).options(*options).where(func.lower(User.email) == email.lower())
    ).scalar_one_or_none()


def get_active_user(user_id: str) -> User:
    """The user a valid token names.

    :raises TokenInvalid: the user no longer exists.
    :raises AccountDisabled: the account was disabled after the token was issued.
    """
    try:
        # /me shows two_factor_enabled: one query with its 2FA row rather than two
        user = db.session.get(User, uuid.UUID(user_id), options=[joinedload(User.two_factor)])
    except ValueError:
        user = None
    if user is None:
        raise TokenInvalid()
    if not user.is_active:
        raise AccountDisabled()
    return user


@dataclass(frozen=True)
class UserProfile:
    """What ``GET /me`` shows (the fields of ``UserSchema``)."""

    id: uuid.UUID
    email: str
    name: str | None
    email_verified: bool
    two_factor_enabled: bool
    roles: list[str]
    created_at: datetime
    updated_at: datetime


_users = User.__table__.c

_two_factor = TwoFactorCredential.__table__.c

_PROFILE = select(
    _users.id,
    _users.email,
    _users.name,
    _users.email_verified_at,
    _users.is_active,
    _users.roles,
    _users.created_at,
    _users.updated_at,
    _two_factor.enabled_at,
).select_from(User.__table__.outerjoin(TwoFactorCredential.__table__))


def get_profile(user_id: str) -> UserProfile:
    """The profile of the user a valid token names: one read-only row, user and 2FA joined.

    A plain select of columns rather than ``session.get``: nothing here is changed, so the
    ORM's identity map and loaders would be pure cost on the most frequent authenticated call.

    :raises TokenInvalid: the user no longer exists.
    :raises AccountDisabled: the account was disabled after the token was issued.
    """
    try:
        uid = uuid.UUID(user_id)
    except ValueError:
        raise TokenInvalid() from None
    with autocommit_connection() as connection:
        row = connection.execute(_PROFILE.where(_users.id == uid)).one_or_none()
    if row is None:
        raise TokenInvalid()
    if not row.is_active:
        raise AccountDisabled()
    return UserProfile(
        id=row.id,
        email=row.email,
        name=row.name,
        email_verified=row.email_verified_at is not None,
        two_factor_enabled=row.enabled_at is not None,
        roles=list(row.roles),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def update_profile(user_id: str, name: str | None) -> User:
    user = get_active_user(user_id)
    user.name = name
    db.session.commit()
    return user


# --- signing in ------------------------------------------------------------------------------
