"""Deleting an account for good: what goes, what is kept (anonymised), what is revoked.

One transaction removes the user and every row about them: sessions, link tokens, provider
links, the 2FA secret, backup codes and challenges (``ON DELETE CASCADE``), the outbox rows
that name them (the deletion notice excepted), OAuth flow states that name them. Revoked-token
rows keep the revocation but lose the user id. Security events are kept for the service's own
statistics and incident work, anonymised (:func:`anonymise_events`): no user id, session id,
IP, user agent or request id, and only the data keys known to name nobody.

After commit the session ids go to Redis, so the account's access tokens die at once; each
session also leaves a tombstone row (:func:`.revocation.record_deleted_sessions`) that a rebuilt
blocklist still finds. The address is free for a new registration at once.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update

from .. import audit
from ..audit import Event
from ..errors import NotFound
from ..extensions import db
from ..mail import outbox
from ..models import EmailOutbox, OAuthState, RevokedToken, SecurityEvent, User, UserSession
from ..models.base import utcnow
from . import reauth, revocation, users

#: Data keys of security events that describe what happened, never who it happened to; every
#: other key is dropped when an event is anonymised.
ANONYMOUS_KEYS = frozenset(
    {
        "action",
        "amr",
        "by",
        "endpoint",
        "how",
        "kind",
        "limit",
        "method",
        "mfa_required",
        "proof",
        "provider",
        "reason",
        "result",
        "sessions",
        "sessions_revoked",
        "via",
    }
)
ANONYMISED = "anonymised"


def delete_account(user_id: uuid.UUID, *, actor_id: uuid.UUID | None = None) -> None:
    """Delete the account ``user_id`` and its personal data; commits, then revokes in Redis.

    ``actor_id``: who asked, when it is not the user (an administrator); recorded on the
    anonymised ``account_deleted`` event. A notice goes to the address the account had.
    Usable from a request, a Celery task or a CLI command (it reads no request).

    :raises NotFound: no such account.
    """
    email = db.session.execute(select(User.email).where(User.id == user_id)).scalar_one_or_none()
    if email is None:
        db.session.rollback()
        raise NotFound("No such user.")
    # Outbox rows first, the user's row next: a delivery holds its row's lock while it writes a
    # link token that references the user, so the other order could deadlock with it.
    _forget_outbox_rows(user_id, email)
    user = db.session.execute(
        select(User).where(User.id == user_id).with_for_update()
    ).scalar_one_or_none()
    if user is None:
        db.session.rollback()
        raise NotFound("No such user.")
    if user.email != email:  # changed in between: its rows name the new address too
        email = user.email
        _forget_outbox_rows(user_id, email)
    sids = _end_sessions(user_id)
    _forget_oauth_states(user_id)
    db.session.execute(
        update(RevokedToken)
        .where(RevokedToken.user_id == user_id)
        .values(user_id=None)
        .execution_options(synchronize_session=False)
    )
    anonymise_events(SecurityEvent.user_id == user_id)
    db.session.execute(
        delete(User).where(User.id == user_id).execution_options(synchronize_session=False)
    )
    db.session.expunge(user)
    outbox.add(outbox.ACCOUNT_DELETED, email=email, when=audit.now_text())
    by_admin = actor_id is not None and actor_id != user_id
    audit.record(
        Event.ACCOUNT_DELETED,
        in_transaction=True,
        anonymous=True,
        reason="admin" if by_admin else "self",
        **({"actor_id": str(actor_id)} if by_admin else {}),
    )
    db.session.commit()
    revocation.publish(sids=sids)


def delete_own_account(user_id: str, *, password: str | None, code: str | None) -> None:
    """``DELETE /me``: the user (holding a fresh access token) re-proves themselves with the
    password, if the account has one, and a second-factor code, if 2FA is on; then
    :func:`delete_account`.

    :raises ValidationFailed, AuthenticationFailed, InvalidMfaCode, RateLimited: see
        :func:`.reauth.confirm_user`.
    :raises TokenInvalid, AccountDisabled: see :func:`.users.get_active_user`.
    """
    user = users.get_active_user(user_id)
    reauth.confirm_user(user, password=password, code=code, action="delete_account")
    delete_account(user.id)


def _end_sessions(user_id: uuid.UUID) -> list[str]:
    """Every session of the user whose tokens may still be presented: recorded as tombstones
    (the rows go with the user); returns their ids for Redis."""
    horizon = utcnow() - revocation.access_token_horizon()
    sids = [
        str(sid)
        for sid in db.session.execute(
            select(UserSession.id).where(
                UserSession.user_id == user_id,
                or_(UserSession.revoked_at.is_(None), UserSession.revoked_at > horizon),
                UserSession.expires_at > horizon,
            )
        ).scalars()
    ]
    revocation.record_deleted_sessions(sids)
    return sids


def _forget_outbox_rows(user_id: uuid.UUID, email: str) -> None:
    """Outbox rows that name the user (by id, or by address for requests such as a password
    reset), whatever their status: unsent mail to a deleted account must not go out."""
    db.session.execute(
        delete(EmailOutbox)
        .where(outbox.naming(user_id, email))
        .execution_options(synchronize_session=False)
    )


def _forget_oauth_states(user_id: uuid.UUID) -> None:
    """OAuth flow states (the database fallback of a few minutes' Redis entries) that name the
    user, e.g. a pending provider link. Few rows, all short-lived: filtered here, not in SQL."""
    rows = db.session.execute(select(OAuthState.key, OAuthState.payload)).all()
    doomed = [key for key, payload in rows if str(user_id) in str(payload)]
    if doomed:
        db.session.execute(
            delete(OAuthState)
            .where(OAuthState.key.in_(doomed))
            .execution_options(synchronize_session=False)
        )


def anonymise_events(where: ColumnElement[bool], *, limit: int | None = None) -> int:
    """Strip the events matching ``where`` of whatever could identify a person: user and
    session ids, IP, user agent, request id (it leads to the request's log lines), and every
    data key but :data:`ANONYMOUS_KEYS`. The event, its time and what happened stay. Joins the
    caller's transaction; returns how many rows changed."""
    query = select(SecurityEvent.id, SecurityEvent.data).where(where)
    if limit is not None:
        query = query.limit(limit)
    rows = db.session.execute(query).all()
    if rows:
        db.session.execute(
            update(SecurityEvent),
            [
                {
                    "id": row.id,
                    "user_id": None,
                    "session_id": None,
                    "ip": None,
                    "user_agent": None,
                    "request_id": None,
                    "data": _anonymous_data(row.data),
                }
                for row in rows
            ],
        )
    return len(rows)


def _anonymous_data(data: dict[str, Any] | None) -> dict[str, Any]:
    kept = {key: value for key, value in (data or {}).items() if key in ANONYMOUS_KEYS}
    kept[ANONYMISED] = True
    return kept


def orphaned_events() -> ColumnElement[bool]:
    """Events that name an account which no longer exists (deleted by the unverified-account
    purge, or written by a request that raced a deletion): the purge anonymises them too."""
    return SecurityEvent.user_id.is_not(None) & ~SecurityEvent.user_id.in_(select(User.id))
