"""What administrators read: the user listing (search, filters, cursor pages), one user's
details, and every user's security events.

The listing is ordered by ``(lower(email), id)`` in byte order, the key of the index
``ix_users_email_search`` (migration 0009): a page is one index range scan of ``limit + 1`` rows
whatever the table's size, and a prefix search on the email is a range of the same index (the
name has its own, ``ix_users_name_search``). ``tests/integration/admin/test_user_search_plan.py``
holds the plans to that at a million users.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import joinedload

from ..errors import NotFound
from ..extensions import db
from ..models import OAuthAccount, SecurityEvent, User, UserSession
from . import tokens

#: ``?status=``: disjoint, so that the three pages add up to every user.
STATUSES = ("active", "disabled", "unverified")

#: Where a page of users stops: the ``(lower(email), id)`` of its last user.
UserKey = tuple[str, uuid.UUID]


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    next_cursor: UserKey | None


@dataclass(frozen=True)
class UserDetails:
    """The user object plus what an administrator needs to decide (API.md, Administration)."""

    user: User
    last_login_at: datetime | None
    providers: list[str]
    passkeys: list[dict[str, Any]]
    active_sessions: int

    def __getattr__(self, name: str) -> Any:  # the user's own fields, for the one schema
        return getattr(self.user, name)


def _byte_order(column: Any) -> ColumnElement[Any]:
    """``lower(column)`` as the search indexes hold it (``COLLATE "C"`` on PostgreSQL)."""
    lowered = func.lower(column)
    if db.session.get_bind().dialect.name == "postgresql":
        return lowered.collate("C")
    return lowered


def _prefix(text: str) -> str:
    """A ``LIKE`` pattern for values starting with ``text`` (its wildcards escaped)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _status_filter(status: str) -> ColumnElement[bool]:
    if status == "disabled":
        return User.is_active.is_(False)
    if status == "unverified":
        return and_(User.is_active.is_(True), User.email_verified_at.is_(None))
    return and_(User.is_active.is_(True), User.email_verified_at.is_not(None))


def has_role(role: str) -> ColumnElement[bool]:
    """Users holding ``role``. PostgreSQL: ``roles::jsonb @> '["<role>"]'``, which the GIN index
    ``ix_users_roles`` serves (migration 0009); elsewhere the JSON text holds '"<role>"' (a slug:
    no quotes, so exactly that element)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(User.roles, JSONB).contains([role])
    return cast(User.roles, String).like(f'%"{role}"%')


def list_users(
    *,
    limit: int,
    after: UserKey | None = None,
    query: str | None = None,
    role: str | None = None,
    status: str | None = None,
) -> UserPage:
    """One page of users in ``(lower(email), id)`` order; ``after`` is the previous page's key.

    ``query``: a case-insensitive prefix of the email or of the name. ``role``: users holding
    it. ``status``: ``active`` (enabled and verified), ``disabled`` or ``unverified`` (enabled,
    email not verified). One query of at most ``limit + 1`` rows.
    """
    email_key = _byte_order(User.email)
    # the key comes from the database: its lower() is the one the index and the cursor compare
    statement = (
        select(User, email_key.label("sort_key"))
        .options(joinedload(User.two_factor))
        .order_by(email_key, User.id)
        .limit(limit + 1)
    )
    if query:
        pattern = _prefix(query)
        statement = statement.where(
            or_(
                email_key.like(pattern, escape="\\"),
                _byte_order(User.name).like(pattern, escape="\\"),
            )
        )
    if role:
        statement = statement.where(has_role(role))
    if status:
        statement = statement.where(_status_filter(status))
    if after is not None:
        statement = statement.where(tuple_(email_key, User.id) > tuple_(*after))
    rows = list(db.session.execute(statement).all())
    page = rows[:limit]
    more = len(rows) > limit
    return UserPage(
        [row.User for row in page], (page[-1].sort_key, page[-1].User.id) if more else None
    )


def get_user(user_id: str | uuid.UUID) -> User:
    """:raises NotFound: no such user (or not a user id at all)."""
    try:
        uid = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
    except ValueError:
        raise NotFound("No such user.") from None
    user = db.session.get(User, uid, options=[joinedload(User.two_factor)])
    if user is None:
        raise NotFound("No such user.")
    return user


def user_details(user_id: str | uuid.UUID) -> UserDetails:
    """The user and its sign-in facts.

    ``last_login_at``: when its newest session was opened. ``passkeys``: empty until passkeys
    exist in this service (the field is in the contract already).

    :raises NotFound: no such user.
    """
    user = get_user(user_id)
    sessions = UserSession.__table__.c
    row = db.session.execute(
        select(
            func.max(sessions.created_at),
            func.count().filter(sessions.revoked_at.is_(None), sessions.expires_at > tokens.now()),
        ).where(sessions.user_id == user.id)
    ).one()
    providers = db.session.execute(
        select(OAuthAccount.provider)
        .where(OAuthAccount.user_id == user.id)
        .order_by(OAuthAccount.provider)
    ).scalars()
    last_login: datetime | None = row[0]
    if last_login is not None and last_login.tzinfo is None:  # SQLite keeps no zone
        last_login = last_login.replace(tzinfo=tokens.now().tzinfo)
    return UserDetails(user, last_login, list(providers), [], int(row[1] or 0))


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventPage:
    events: list[SecurityEvent]
    #: The id to continue below, or None on the last page.
    next_cursor: int | None


def list_events(
    *,
    limit: int,
    after: int | None = None,
    user_id: uuid.UUID | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
) -> EventPage:
    """Every user's security events, newest first (by id, the order they were written).

    Filters: one user, one event type, events at or after ``since``. ``after``: the previous
    page's last id. One query of at most ``limit + 1`` rows.
    """
    statement = select(SecurityEvent).order_by(SecurityEvent.id.desc()).limit(limit + 1)
    if user_id is not None:
        statement = statement.where(SecurityEvent.user_id == user_id)
    if event_type:
        statement = statement.where(SecurityEvent.event == event_type)
    if since is not None:
        statement = statement.where(SecurityEvent.occurred_at >= since)
    if after is not None:
        statement = statement.where(SecurityEvent.id < after)
    rows = list(db.session.execute(statement).scalars())
    page = rows[:limit]
    return EventPage(page, page[-1].id if len(rows) > limit else None)
