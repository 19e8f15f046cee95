"""Refresh-token rotation: each session has one refresh token that may be used next."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select, update

from .. import audit, metrics
from ..audit import Event
from ..database import autocommit_connection
from ..errors import AccountDisabled, AppError, TokenExpired, TokenRevoked
from ..extensions import db
from ..models import User, UserSession
from ..utils.security import new_token_id
from . import revocation, tokens
from .sessions import TokenPair, _Link, _session_uuid, _Subject, _token_pair
from .tokens import REFRESH


def refresh(refresh_token: str) -> TokenPair:
    """Spend a refresh token for a new pair in the same session (rotation).

    The swap is one conditional UPDATE, so of concurrent uses of one token exactly one wins.
    Presenting a token already spent revokes the session (reuse detection), except the
    immediately previous one within ``REFRESH_REUSE_GRACE_SECONDS``, which gets the same
    successor pair again.

    :raises TokenInvalid, TokenExpired: a bad token.
    :raises TokenRevoked: the session is revoked, or this use was a reuse.
    :raises AccountDisabled: the account was disabled; the token stays unspent.
    """
    try:
        claims = tokens.decode(refresh_token, expected_type=REFRESH)
    except AppError as error:
        _count_refresh(error.code)
        raise
    session_id = _session_uuid(claims)
    old_jti = str(claims["jti"])
    issued = tokens.now()
    with autocommit_connection() as connection:
        row = connection.execute(
            _ROTATE,
            {
                "sid": session_id,
                "old": old_jti,
                "now": issued,
                "refresh_jti": new_token_id(),
                "access_jti": new_token_id(),
            },
        ).one_or_none()
    if row is not None:
        subject = _Subject(row.user_id, row.email, row.email_verified_at is not None, row.roles)
        link = _Link(
            row.id, row.access_jti, row.refresh_jti, row.issued_at, row.expires_at, row.amr
        )
        _count_refresh("success")
        return _token_pair(subject, link, fresh=False)
    session = db.session.execute(
        select(UserSession).where(UserSession.id == session_id)
    ).scalar_one_or_none()
    if session is None:
        raise TokenRevoked()
    return _refresh_lost(session, old_jti, issued)


_sessions = UserSession.__table__.c
_users = User.__table__.c


def _of_user(column: Any) -> Any:
    return select(column).where(_users.id == _sessions.user_id).scalar_subquery()


# The whole successful rotation is this one statement, committed on its own: the session
# advances only if the presented token is its current link, unrevoked, unexpired, and the account
# active; it returns what the new pair needs. Of concurrent uses exactly one matches the row.
_ROTATE = (
    update(UserSession.__table__)
    .where(
        _sessions.id == bindparam("sid"),
        _sessions.refresh_jti == bindparam("old"),
        _sessions.revoked_at.is_(None),
        _sessions.expires_at > bindparam("now"),
        select(_users.id).where(_users.id == _sessions.user_id, _users.is_active).exists(),
    )
    .values(
        refresh_jti=bindparam("refresh_jti"),
        access_jti=bindparam("access_jti"),
        previous_refresh_jti=bindparam("old"),
        issued_at=bindparam("now"),
        last_used_at=bindparam("now"),
    )
    .returning(
        _sessions.id,
        _sessions.user_id,
        _sessions.access_jti,
        _sessions.refresh_jti,
        _sessions.issued_at,
        _sessions.expires_at,
        _sessions.amr,
        _of_user(_users.email).label("email"),
        _of_user(_users.email_verified_at).label("email_verified_at"),
        _of_user(_users.roles).label("roles"),
    )
)


def _count_refresh(result: str) -> None:
    metrics.get().token_refreshes.labels(result=result).inc()


def _refresh_lost(session: UserSession, old_jti: str, now: datetime) -> TokenPair:
    """Why the rotation matched no row: revoked, expired, account disabled, grace or reuse."""
    if session.revoked_at is not None:
        db.session.rollback()
        _count_refresh("revoked")
        raise TokenRevoked()
    if session.expires_at <= now:
        db.session.rollback()
        _count_refresh("session_expired")
        raise TokenExpired("The session has expired.")
    if session.refresh_jti == old_jti:  # the current link: only a disabled account stopped it
        db.session.rollback()
        raise AccountDisabled()
    grace = current_app.config["REFRESH_REUSE_GRACE_SECONDS"]
    if (
        grace
        and session.previous_refresh_jti == old_jti
        and now - session.issued_at <= timedelta(seconds=grace)
    ):
        pair = _token_pair(session.user, session, fresh=False)
        db.session.rollback()
        _count_refresh("grace_retry")
        return pair
    sids = revocation.record_session_revocation([session], "refresh_reuse")
    db.session.commit()
    revocation.publish(sids=sids)
    audit.record(Event.REFRESH_TOKEN_REUSED, user_id=session.user_id, session_id=session.id)
    _count_refresh("reuse")
    raise TokenRevoked()
