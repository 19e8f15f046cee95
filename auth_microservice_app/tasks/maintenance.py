"""Housekeeping: expired link tokens, revocations and outbox rows do not pile up forever."""

from __future__ import annotations

from datetime import datetime, timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy import Delete, delete, or_

from ..extensions import db
from ..identity import ownership, revocation
from ..models import EmailOutbox, EmailToken, OAuthState, RevokedToken, SecurityEvent, UserSession
from ..models.base import utcnow


def _purge_events(now: datetime) -> int:
    """Security events past ``SECURITY_EVENT_RETENTION_DAYS`` (0: none are purged)."""
    days = int(current_app.config["SECURITY_EVENT_RETENTION_DAYS"])
    if days <= 0:
        return 0
    result = db.session.execute(
        delete(SecurityEvent).where(SecurityEvent.occurred_at < now - timedelta(days=days))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@shared_task(name="auth.purge_expired")
def purge_expired() -> dict[str, int]:
    """Delete rows nobody can use any more; returns how many of each went."""
    expired_accounts = ownership.purge_expired_unverified()  # commits and publishes
    now = utcnow()
    removed = {
        "unverified_accounts": expired_accounts,
        "email_tokens": db.session.execute(
            delete(EmailToken).where(EmailToken.expires_at < now - timedelta(days=1))
        ).rowcount,  # type: ignore[attr-defined]
        "revoked_tokens": db.session.execute(
            delete(RevokedToken).where(RevokedToken.expires_at < now)
        ).rowcount,  # type: ignore[attr-defined]
        "security_events": _purge_events(now),
        "oauth_states": db.session.execute(
            delete(OAuthState).where(OAuthState.expires_at < now)
        ).rowcount,  # type: ignore[attr-defined]
        "sessions": db.session.execute(dead_sessions(now)).rowcount,  # type: ignore[attr-defined]
        "email_outbox": db.session.execute(
            delete(EmailOutbox).where(
                EmailOutbox.status.in_(["sent", "skipped"]),
                EmailOutbox.processed_at < now - timedelta(days=7),
            )
        ).rowcount,  # type: ignore[attr-defined]
    }
    db.session.commit()
    return removed


def dead_sessions(now: datetime) -> Delete:
    """Delete the sessions that can no longer matter to a token check.

    The revocation check (:func:`..auth.revocation.is_revoked`) reads a session's row to answer
    for its access tokens: from the database when Redis is down or cold (where a missing row
    counts as revoked), and :func:`..auth.revocation.rebuild_blocklist` copies every session
    revoked within one access lifetime back into Redis. So a row goes only when no access token
    of its session can still be accepted, at least :func:`..auth.revocation.access_token_horizon`
    (one access lifetime, plus the leeway) after the session ended:

    - past ``expires_at`` by that much: no refresh works after ``expires_at``, so the last
      access token was issued before it and has expired too. Deleting earlier would make the
      database answer "revoked" for a live token of an expired session.
    - revoked ``JWT_REFRESH_TOKEN_EXPIRES`` ago (and never less than that horizon): by then
      every refresh token it issued has expired too, so the row no longer even decides the
      answer to a stale refresh (``token_revoked`` either way), and the device memory of the
      new-sign-in notice keeps a signed-out device for as long.
    """
    horizon = revocation.access_token_horizon()
    revoked_for = max(
        timedelta(seconds=int(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"])), horizon
    )
    return delete(UserSession).where(
        or_(
            UserSession.expires_at < now - horizon,
            UserSession.revoked_at < now - revoked_for,
        )
    )
