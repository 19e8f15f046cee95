"""Housekeeping: expired link tokens, revocations and outbox rows do not pile up forever."""

from __future__ import annotations

from datetime import datetime, timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy import delete

from ..auth import ownership
from ..extensions import db
from ..models import EmailOutbox, EmailToken, OAuthState, RevokedToken, SecurityEvent
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
        "email_outbox": db.session.execute(
            delete(EmailOutbox).where(
                EmailOutbox.status.in_(["sent", "skipped"]),
                EmailOutbox.processed_at < now - timedelta(days=7),
            )
        ).rowcount,  # type: ignore[attr-defined]
    }
    db.session.commit()
    return removed
