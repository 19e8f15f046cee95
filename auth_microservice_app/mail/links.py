"""Single-use, expiring, purpose-bound link tokens, stored only as SHA-256 hashes."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Update, select, update

from ..errors import InvalidLinkToken
from ..extensions import db
from ..models import EmailToken
from ..models.base import utcnow
from ..utils.security import sha256_hex

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a secret
MAGIC_LINK = "magic_link"
CHANGE_EMAIL = "change_email"
TTL_SETTINGS = {
    VERIFY_EMAIL: "EMAIL_VERIFICATION_TOKEN_TTL",
    RESET_PASSWORD: "PASSWORD_RESET_TOKEN_TTL",
    MAGIC_LINK: "MAGIC_LINK_TOKEN_TTL",
    CHANGE_EMAIL: "EMAIL_CHANGE_TOKEN_TTL",
}


def ttl(purpose: str) -> int:
    return int(current_app.config[TTL_SETTINGS[purpose]])


def _void(user_id: uuid.UUID, purpose: str, now: datetime) -> None:
    db.session.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user_id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


def issue(user_id: uuid.UUID, purpose: str) -> str:
    """A new token (256 random bits) for ``purpose``; older unused ones of that purpose die.

    Adds to the session; the caller commits.
    """
    now = utcnow()
    _void(user_id, purpose, now)
    token = secrets.token_urlsafe(32)
    db.session.add(
        EmailToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=sha256_hex(token),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl(purpose)),
        )
    )
    return token


def peek(token: str, purpose: str) -> uuid.UUID:
    """The user a still-valid token belongs to, without spending it.

    :raises InvalidLinkToken: unknown, used, expired or of another purpose.
    """
    row: uuid.UUID | None = db.session.execute(
        select(EmailToken.user_id).where(
            EmailToken.token_hash == sha256_hex(token),
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
            EmailToken.expires_at > utcnow(),
        )
    ).scalar_one_or_none()
    if row is None:
        raise InvalidLinkToken()
    return row


def _spend(token: str, purpose: str) -> Update:
    """The one conditional UPDATE that spends a live token of ``purpose`` (add RETURNING)."""
    return (
        update(EmailToken)
        .where(
            EmailToken.token_hash == sha256_hex(token),
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
            EmailToken.expires_at > utcnow(),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def consume(token: str, purpose: str) -> uuid.UUID:
    """Spend the token and return its user, atomically: of parallel redemptions one wins.

    One conditional UPDATE ... RETURNING, never read-then-write. Part of the caller's
    transaction: if the caller rolls back, the token stays unspent.

    :raises InvalidLinkToken: unknown, used, expired or of another purpose.
    """
    statement = _spend(token, purpose).returning(EmailToken.user_id)
    user_id = db.session.execute(statement).scalar_one_or_none()
    if user_id is None:
        raise InvalidLinkToken()
    return user_id


# --- links bound to an address (email change) ------------------------------------------------


def reserve(user_id: uuid.UUID, purpose: str, *, new_email: str) -> uuid.UUID:
    """Reserve the one link of ``purpose`` that may confirm ``new_email``; returns its row id.

    Every older unused link of the purpose dies now, in the request's transaction, whether its
    mail went out or not: a second request voids the first. The row holds the hash of a value
    nobody knows, so it confirms nothing until :func:`arm` gives it a token at delivery (no raw
    token ever rests in the database or the outbox). The caller commits.
    """
    now = utcnow()
    _void(user_id, purpose, now)
    row = EmailToken(
        id=uuid.uuid4(),
        user_id=user_id,
        purpose=purpose,
        token_hash=sha256_hex(secrets.token_urlsafe(32)),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl(purpose)),
        new_email=new_email,
    )
    db.session.add(row)
    return row.id


def arm(token_id: uuid.UUID, purpose: str) -> tuple[str, uuid.UUID, str] | None:
    """Give a reserved link its token: (token, user id, address), or None when a later request
    voided it (or it expired). One conditional UPDATE; the caller commits once the mail is sent.
    """
    token = secrets.token_urlsafe(32)
    row = db.session.execute(
        update(EmailToken)
        .where(
            EmailToken.id == token_id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
            EmailToken.expires_at > utcnow(),
        )
        .values(token_hash=sha256_hex(token), expires_at=utcnow() + timedelta(seconds=ttl(purpose)))
        .returning(EmailToken.user_id, EmailToken.new_email)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None or row.new_email is None:
        return None
    return token, row.user_id, row.new_email


def consume_bound(token: str, purpose: str) -> tuple[uuid.UUID, str]:
    """:func:`consume` for a link bound to an address: (user id, the address).

    :raises InvalidLinkToken: unknown, used, expired or of another purpose.
    """
    statement = _spend(token, purpose).returning(EmailToken.user_id, EmailToken.new_email)
    row = db.session.execute(statement).one_or_none()
    if row is None or row.new_email is None:
        raise InvalidLinkToken()
    return row.user_id, row.new_email
