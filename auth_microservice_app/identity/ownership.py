"""Who owns an account whose address nobody has proven yet.

Anyone can register any address. Until the mailbox is proven the account is only a claim, so:

- it cannot acquire credentials: linking a provider, enrolling an authenticator (and, later,
  a passkey) need a verified address (:func:`require_verified`);
- the first proof of the mailbox by anything but the registrant's own verification link (a
  magic link, a password reset, a provider that vouches for the address) hands the account over
  clean (:func:`claim`): whatever the registrant attached (password, provider links, 2FA secret,
  backup codes, pending challenges, sessions, outstanding links) is removed or revoked in the
  caller's transaction, because the registrant may have been someone else;
- it expires after ``UNVERIFIED_ACCOUNT_TTL`` seconds (default: the verification link's
  lifetime): it can no longer sign in with its password, a new registration of the address
  takes it over (:func:`take_over_expired`), and the periodic purge deletes it
  (:func:`purge_expired_unverified`).

The registrant's own verification link only marks the address verified: it went to the mailbox,
and following it says "this account is mine".
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from .. import audit
from ..audit import Event
from ..errors import EmailNotVerified
from ..extensions import db
from ..models import (
    BackupCode,
    EmailToken,
    MfaChallengeRecord,
    OAuthAccount,
    TwoFactorCredential,
    User,
    UserSession,
)
from ..models.base import utcnow
from . import revocation


def require_verified(user: User, action: str) -> None:
    """Refuse to attach a credential to an account whose address is not proven.

    :raises EmailNotVerified: 403 ``email_not_verified``.
    """
    if not user.email_verified:
        raise EmailNotVerified(f"Verify your email address before you {action}.")


def void_links(user_id: uuid.UUID) -> None:
    """Spend every outstanding link token of the user (all purposes); the caller commits."""
    db.session.execute(
        update(EmailToken)
        .where(EmailToken.user_id == user_id, EmailToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def claim(user: User, *, proof: str) -> list[str]:
    """The mailbox of ``user`` has just been proven by ``proof`` (``magic_link``,
    ``password_reset``, ``oauth:<provider>``): make the address verified.

    If it was not verified yet, the account is handed over clean first: password cleared (a
    reset sets the new one after this), provider links, 2FA secret, backup codes, pending
    second-factor challenges and outstanding links deleted, every session revoked. All of it
    joins the caller's transaction; the caller commits, then passes the returned session ids
    to :func:`.revocation.publish`.
    """
    if user.email_verified:
        return []
    uid = user.id
    user.password_hash = None
    for model in (OAuthAccount, BackupCode, MfaChallengeRecord, TwoFactorCredential):
        db.session.execute(
            delete(model).where(model.user_id == uid).execution_options(synchronize_session=False)
        )
    db.session.expire(user, ["two_factor"])
    void_links(uid)
    open_sessions = db.session.execute(
        select(UserSession).where(UserSession.user_id == uid, UserSession.revoked_at.is_(None))
    ).scalars()
    sids = revocation.record_session_revocation(open_sessions, "account_claimed")
    user.email_verified_at = utcnow()
    audit.record(
        Event.ACCOUNT_CLAIMED, user_id=uid, proof=proof, sessions=len(sids), in_transaction=True
    )
    return sids


def _ttl() -> int:
    return int(current_app.config["UNVERIFIED_ACCOUNT_TTL"])


def is_expired(user: User, now: datetime | None = None) -> bool:
    """Whether ``user`` is an unverified account past ``UNVERIFIED_ACCOUNT_TTL`` (0: never)."""
    ttl = _ttl()
    if user.email_verified or ttl <= 0:
        return False
    return user.created_at <= (now or utcnow()) - timedelta(seconds=ttl)


def take_over_expired(user: User) -> bool:
    """Delete ``user`` if it is still an expired unverified account, so that a new
    registration can have its address. Locks the row first, so of concurrent registrations one
    deletes it and the others find it gone (and lose on the unique index). The caller commits,
    then publishes the returned session ids.

    Returns whether the account was deleted.
    """
    locked = db.session.execute(
        select(User)
        .where(User.id == user.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if locked is None or not is_expired(locked):
        return False
    _delete_accounts([locked.id], reason="unverified_expired")
    return True


def _delete_accounts(user_ids: list[uuid.UUID], *, reason: str) -> None:
    """Revoke the sessions of the accounts (recorded for Redis), then delete them; their rows
    in every other table go with them (``ON DELETE CASCADE``)."""
    sessions = db.session.execute(
        select(UserSession).where(
            UserSession.user_id.in_(user_ids), UserSession.revoked_at.is_(None)
        )
    ).scalars()
    sids = revocation.record_session_revocation(sessions, reason)
    revocation.record_deleted_sessions(sids)  # the rows go: a rebuilt blocklist needs these
    db.session.flush()
    # Deleted sessions leave the database fallback nothing to find, so Redis must know first.
    db.session.info.setdefault(_PENDING_SIDS, []).extend(sids)
    for user_id in user_ids:
        audit.record(Event.ACCOUNT_DELETED, user_id=user_id, reason=reason, in_transaction=True)
    db.session.execute(
        delete(User).where(User.id.in_(user_ids)).execution_options(synchronize_session=False)
    )


_PENDING_SIDS = "ownership_revoked_sids"


def pending_revocations() -> list[str]:
    """Session ids revoked by :func:`take_over_expired` in this transaction, to publish."""
    sids: list[str] = db.session.info.pop(_PENDING_SIDS, [])
    return sids


def purge_expired_unverified(*, limit: int = 1000) -> int:
    """Delete unverified accounts past ``UNVERIFIED_ACCOUNT_TTL`` (revoking their sessions).
    Commits and publishes; returns how many went."""
    ttl = _ttl()
    if ttl <= 0:
        return 0
    horizon = utcnow() - timedelta(seconds=ttl)
    ids = list(
        db.session.execute(
            select(User.id)
            .where(User.email_verified_at.is_(None), User.created_at <= horizon)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if ids:
        _delete_accounts(ids, reason="unverified_expired")
    db.session.commit()
    revocation.publish(sids=pending_revocations())
    return len(ids)
