"""``GET /me/export``: every personal datum the service holds about the user, as JSON.

One section per table that names the user (:data:`SECTIONS`: a test walks the models and fails
when a table with a ``user_id`` or a reference to ``users`` is missing here). Only data: never
a password hash, a token or its hash, a token id, a TOTP secret or a backup code hash. Outbox
rows (mail queued or sent, which name the user inside their payload) are listed by kind and
status. Passkeys are not stored yet: their section is an empty list until they are.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..mail import outbox
from ..models import (
    BackupCode,
    EmailOutbox,
    EmailToken,
    MfaChallengeRecord,
    OAuthAccount,
    RevokedToken,
    SecurityEvent,
    TwoFactorCredential,
    UserSession,
)
from ..models.base import utcnow
from . import users

FORMAT_VERSION = 1
#: table -> the path of its rows in the export (a list, or the one object for ``users``).
SECTIONS = {
    "users": ("profile",),
    "user_sessions": ("sessions",),
    "oauth_accounts": ("providers",),
    "two_factor_credentials": ("two_factor", "credential"),
    "two_factor_backup_codes": ("two_factor", "backup_codes"),
    "mfa_challenges": ("two_factor", "sign_in_challenges"),
    "security_events": ("security_events",),
    "email_tokens": ("email_links",),
    "revoked_tokens": ("revoked_access_tokens",),
}


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _rows(model: Any, *columns: str, where: Any, order: Any = None) -> list[dict[str, Any]]:
    query = select(*(getattr(model, name) for name in columns)).where(where)
    if order is not None:
        query = query.order_by(order)
    return [
        {
            name: _time(value) if isinstance(value, datetime) else _plain(value)
            for name, value in zip(columns, row, strict=True)
        }
        for row in db.session.execute(query)
    ]


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def export_account(user_id: str) -> dict[str, Any]:
    """The user's data (see the module docstring); read-only.

    :raises TokenInvalid, AccountDisabled: see :func:`.users.get_active_user`.
    """
    user = users.get_active_user(user_id)
    uid = user.id
    credential = db.session.get(TwoFactorCredential, uid)
    body = {
        "format_version": FORMAT_VERSION,
        "exported_at": _time(utcnow()),
        "profile": {
            "id": str(uid),
            "email": user.email,
            "name": user.name,
            "email_verified": user.email_verified,
            "email_verified_at": _time(user.email_verified_at),
            "active": user.is_active,
            "roles": list(user.roles),
            "has_password": user.password_hash is not None,
            "created_at": _time(user.created_at),
            "updated_at": _time(user.updated_at),
        },
        "sessions": _rows(
            UserSession,
            *("id", "created_at", "last_used_at", "expires_at", "revoked_at", "revoked_reason"),
            *("user_agent", "ip", "amr"),
            where=UserSession.user_id == uid,
            order=UserSession.created_at,
        ),
        "providers": _rows(
            OAuthAccount,
            *("provider", "subject", "email", "email_verified", "created_at", "last_login_at"),
            where=OAuthAccount.user_id == uid,
            order=OAuthAccount.created_at,
        ),
        "passkeys": [],
        "two_factor": {
            "enabled": credential is not None and credential.is_enabled,
            "credential": []
            if credential is None
            else [
                {
                    "created_at": _time(credential.created_at),
                    "enabled_at": _time(credential.enabled_at),
                }
            ],
            "backup_codes": _rows(
                BackupCode, "created_at", "used_at", where=BackupCode.user_id == uid
            ),
            "sign_in_challenges": _rows(
                MfaChallengeRecord,
                *("created_at", "expires_at", "used_at", "ip", "user_agent", "amr"),
                where=MfaChallengeRecord.user_id == uid,
            ),
        },
        "security_events": _rows(
            SecurityEvent,
            *("id", "occurred_at", "event", "session_id", "ip", "user_agent", "request_id"),
            "data",
            where=SecurityEvent.user_id == uid,
            order=SecurityEvent.id,
        ),
        "email_links": _rows(
            EmailToken,
            *("purpose", "created_at", "expires_at", "used_at", "new_email"),
            where=EmailToken.user_id == uid,
            order=EmailToken.created_at,
        ),
        "revoked_access_tokens": _rows(
            RevokedToken, "revoked_at", "expires_at", where=RevokedToken.user_id == uid
        ),
        "mail": _rows(
            EmailOutbox,
            *("kind", "status", "created_at", "processed_at"),
            where=outbox.naming(uid, user.email),
            order=EmailOutbox.created_at,
        ),
    }
    db.session.rollback()
    return body
