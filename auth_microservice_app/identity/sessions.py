"""Sessions: opening one, the token pair of its current link, signing out, revocation.

A session (``user_sessions``) is one sign-in; its tokens carry its id as ``sid``. Each public
function is one unit of work: it commits once, or raises. Refresh rotation is
:mod:`.rotation`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import lazyload

from .. import audit
from ..audit import Event
from ..errors import NotFound, TokenExpired, TokenInvalid
from ..extensions import db
from ..mail.notifications import security_notice
from ..models import User, UserSession
from ..utils.security import new_token_id
from . import revocation, tokens
from .tokens import ACCESS, REFRESH, TokenClaims


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


@dataclass(frozen=True)
class ClientInfo:
    ip: str | None
    user_agent: str | None


# --- users -----------------------------------------------------------------------------------


def start_session(user: User, client: ClientInfo, *, amr: list[str]) -> TokenPair:
    """Open a session for a user who has just proved themselves, and commit it.

    A sign-in from a device (user agent) the account has not used before queues a notice.
    Beyond ``SESSION_MAX_PER_USER`` open sessions, the least recently used are revoked in the
    same transaction (their access tokens die at once).
    """
    issued = tokens.now()
    _notice_if_new_device(user, client)
    session = UserSession(
        user_id=user.id,
        created_at=issued,
        last_used_at=issued,
        expires_at=issued + timedelta(seconds=current_app.config["SESSION_MAX_AGE"]),
        user_agent=(client.user_agent or "")[:512] or None,
        ip=client.ip,
        amr=amr,
        refresh_jti=new_token_id(),
        access_jti=new_token_id(),
        issued_at=issued,
    )
    db.session.add(session)
    db.session.flush()
    retired = _retire_sessions_over_limit(user.id, session.id, issued)
    pair = _token_pair(user, session, fresh=True)
    audit.record(
        Event.LOGIN_SUCCEEDED, user_id=user.id, session_id=session.id, amr=amr, in_transaction=True
    )
    audit.record_per_session(Event.SESSION_REVOKED, retired, user_id=user.id, reason=SESSION_LIMIT)
    db.session.commit()
    revocation.publish(sids=retired)
    return pair


#: ``revoked_reason`` of a session ended because its user opened too many.
SESSION_LIMIT = "session_limit"

#: The most sessions one sign-in revokes over the limit (about 0.3 ms each): a user who piled
#: up thousands before the limit existed is brought down to it over a few sign-ins, none slow.
RETIRE_AT_ONCE = 500


def _retire_sessions_over_limit(user_id: uuid.UUID, keep: uuid.UUID, now: datetime) -> list[str]:
    """Revoke the user's least recently used open sessions beyond ``SESSION_MAX_PER_USER``
    (0: no limit), never ``keep``, the one just opened; the caller commits, then publishes.

    One query, on the ``(user_id, revoked_at)`` index: the user's open sessions but the
    newest ``limit - 1`` others, at most :data:`RETIRE_AT_ONCE` of them. Usually one row (the
    sign-in that went over). Two concurrent sign-ins of one user may leave one session over
    the limit, until the next.
    """
    limit = int(current_app.config["SESSION_MAX_PER_USER"])
    if limit <= 0:
        return []
    excess = db.session.execute(
        select(UserSession)
        .options(lazyload(UserSession.user))
        .where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
            UserSession.id != keep,
        )
        .order_by(UserSession.last_used_at.desc(), UserSession.id.desc())
        .offset(limit - 1)
        .limit(RETIRE_AT_ONCE)
    ).scalars()
    return revocation.record_session_revocation(excess, SESSION_LIMIT)


def _notice_if_new_device(user: User, client: ClientInfo) -> None:
    agent = (client.user_agent or "")[:512] or None
    previous = (
        db.session.execute(
            select(UserSession.user_agent).where(UserSession.user_id == user.id).limit(50)
        )
        .scalars()
        .all()
    )
    if previous and agent not in previous:
        security_notice(user.id, "new_sign_in", user_agent=agent, ip=client.ip)


def _token_pair(user: User | _Subject, session: UserSession | _Link, *, fresh: bool) -> TokenPair:
    """The pair for the session's current link of the chain (same ids, same times: same tokens)."""
    claims = TokenClaims(
        subject=str(user.id),
        session_id=str(session.id),
        jti=session.access_jti,
        issued_at=session.issued_at,
        email=user.email,
        email_verified=user.email_verified,
        roles=list(user.roles),
        amr=list(session.amr),
        fresh=fresh,
    )
    refresh_claims = TokenClaims(**{**claims.__dict__, "jti": session.refresh_jti, "fresh": False})
    config = current_app.config
    refresh_expires = min(
        session.issued_at + timedelta(seconds=config["JWT_REFRESH_TOKEN_EXPIRES"]),
        session.expires_at,
    )
    return TokenPair(
        access_token=tokens.encode_access(claims),
        refresh_token=tokens.encode_refresh(refresh_claims, refresh_expires),
        expires_in=int(config["JWT_ACCESS_TOKEN_EXPIRES"]),
    )


# --- tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Subject:
    """The user fields a token carries, when no ``User`` was loaded."""

    id: uuid.UUID
    email: str
    email_verified: bool
    roles: list[str]


@dataclass(frozen=True)
class _Link:
    """The session fields a token carries, when no ``UserSession`` was loaded."""

    id: uuid.UUID
    access_jti: str
    refresh_jti: str
    issued_at: datetime
    expires_at: datetime
    amr: list[str]


def _session_uuid(claims: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(claims.get("sid")))
    except ValueError:
        raise TokenInvalid() from None


# --- signing out and revocation --------------------------------------------------------------


def logout(claims: dict[str, Any], refresh_token: str | None) -> None:
    """Revoke the session of this access token (and of ``refresh_token``, if it is the user's)."""
    session_ids = {_session_uuid(claims)}
    if refresh_token:
        try:
            other = tokens.decode(refresh_token, expected_type=REFRESH)
        except (TokenInvalid, TokenExpired):
            other = None
        if other is not None and other.get("sub") == claims["sub"]:
            session_ids.add(_session_uuid(other))
    _revoke_sessions(claims["sub"], session_ids, "logout")


def logout_all(user_id: str) -> int:
    """Revoke every session of the user; returns how many were open."""
    count = revoke_other_sessions(user_id, None, "logout_all")
    audit.record(Event.LOGGED_OUT_EVERYWHERE, user_id=user_id, sessions=count)
    return count


def revoke_other_sessions(
    user_id: str | uuid.UUID, keep_session_id: str | None, reason: str
) -> int:
    """Revoke every open session of the user but ``keep_session_id``; the caller commits first.

    Commits, then publishes to Redis; returns how many sessions were revoked.
    """
    query = select(UserSession).where(
        UserSession.user_id == uuid.UUID(str(user_id)), UserSession.revoked_at.is_(None)
    )
    if keep_session_id:
        query = query.where(UserSession.id != uuid.UUID(keep_session_id))
    sids = revocation.record_session_revocation(db.session.execute(query).scalars().all(), reason)
    db.session.commit()
    revocation.publish(sids=sids)
    return len(sids)


def _revoke_sessions(user_id: str, session_ids: set[uuid.UUID], reason: str) -> None:
    sessions = (
        db.session.execute(
            select(UserSession).where(
                UserSession.id.in_(session_ids), UserSession.user_id == uuid.UUID(user_id)
            )
        )
        .scalars()
        .all()
    )
    sids = revocation.record_session_revocation(sessions, reason)
    for sid in sids:
        audit.record(
            Event.SESSION_REVOKED,
            user_id=user_id,
            session_id=sid,
            reason=reason,
            in_transaction=True,
        )
    db.session.commit()
    revocation.publish(sids=sids)


def revoke_token(user_id: str, token: str) -> None:
    """RFC 7009: revoke one of the user's tokens; unknown, invalid or foreign tokens are ignored.

    An access token is blocklisted by ``jti``; a refresh token ends its whole session, because
    the access tokens it minted must not outlive it.
    """
    claims = tokens.decode_any(token)
    if claims is None or claims.get("sub") != user_id:
        return
    if claims.get("type") == REFRESH:
        _revoke_sessions(user_id, {_session_uuid(claims)}, "revoked")
        return
    if claims.get("type") != ACCESS:
        return
    expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=tokens.now().tzinfo)
    if expires_at <= tokens.now():
        return
    revocation.record_token_revocation(str(claims["jti"]), uuid.UUID(user_id), expires_at)
    db.session.commit()
    revocation.publish(jtis=[(str(claims["jti"]), expires_at)])
    audit.record(Event.TOKEN_REVOKED, user_id=user_id, session_id=claims.get("sid"))


# --- sessions --------------------------------------------------------------------------------

#: Where a page of sessions stops: the ``(last_used_at, id)`` of its last session.
SessionKey = tuple[datetime, uuid.UUID]


@dataclass(frozen=True)
class SessionPage:
    sessions: list[UserSession]
    #: The key to continue after, or None on the last page.
    next_cursor: SessionKey | None


def list_sessions(user_id: str, *, limit: int, after: SessionKey | None = None) -> SessionPage:
    """One page of the user's open sessions, most recently used first (ties by id).

    Keyset paging on ``(last_used_at, id)``: ``after`` is the key of the previous page's last
    session. A session opened meanwhile is the most recently used, so it never shifts a later
    page (it shows on the first); one used (refreshed) meanwhile moves to the front, where a
    listing under way does not meet it again. One query of at most ``limit + 1`` rows.
    """
    query = (
        select(UserSession)
        .options(lazyload(UserSession.user))  # the listing shows nothing of the user
        .where(
            UserSession.user_id == uuid.UUID(user_id),
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > tokens.now(),
        )
        .order_by(UserSession.last_used_at.desc(), UserSession.id.desc())
        .limit(limit + 1)
    )
    if after is not None:
        used, session_id = after
        query = query.where(
            or_(
                UserSession.last_used_at < used,
                and_(UserSession.last_used_at == used, UserSession.id < session_id),
            )
        )
    rows = list(db.session.execute(query).scalars())
    page = rows[:limit]
    more = len(rows) > limit
    return SessionPage(page, (page[-1].last_used_at, page[-1].id) if more else None)


def delete_session(user_id: str, session_id: uuid.UUID) -> None:
    """Revoke one of the user's sessions.

    :raises NotFound: no such open session of this user (another user's looks the same).
    """
    session = db.session.get(UserSession, session_id)
    if session is None or str(session.user_id) != user_id or session.revoked_at is not None:
        raise NotFound("No such session.")
    _revoke_sessions(user_id, {session_id}, "deleted")


# --- audit -----------------------------------------------------------------------------------
