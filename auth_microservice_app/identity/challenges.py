"""Second-factor challenges: what a first factor leaves pending until the second one comes.

A challenge is a row (``mfa_challenges``) named by a short-lived ``mfa_token``
(:func:`.tokens.encode_mfa`); spending it is one conditional ``UPDATE``, so of concurrent
attempts exactly one succeeds. The codes that answer it are the two-factor blueprint's rules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, update

from .. import audit
from ..audit import Event
from ..extensions import db
from ..models import MfaChallengeRecord, User
from ..utils.security import new_token_id
from . import tokens
from .sessions import ClientInfo

#: What answers a challenge (``POST /api/v1/2fa/verify``).
METHODS = ("totp", "backup_code")


@dataclass(frozen=True)
class MfaChallenge:
    """The first factor passed; a second one is needed (``POST /api/v1/2fa/verify``)."""

    mfa_token: str
    methods: list[str]
    mfa_required: bool = True


def start_challenge(user: User, client: ClientInfo, *, amr: list[str]) -> MfaChallenge:
    """Record a second-factor challenge for a user who passed a first factor, and commit.

    Returns the ``mfa_token`` (a JWT naming the challenge, ``MFA_TOKEN_TTL`` seconds) and the
    accepted methods. The user's expired challenges are purged on the way.
    """
    issued = tokens.now()
    jti = new_token_id()
    db.session.execute(
        delete(MfaChallengeRecord).where(
            MfaChallengeRecord.user_id == user.id, MfaChallengeRecord.expires_at <= issued
        )
    )
    db.session.add(
        MfaChallengeRecord(
            jti=jti,
            user_id=user.id,
            amr=list(amr),
            ip=client.ip,
            user_agent=(client.user_agent or "")[:512] or None,
            created_at=issued,
            expires_at=tokens.mfa_expires_at(issued),
        )
    )
    token = tokens.encode_mfa(subject=str(user.id), jti=jti, amr=list(amr), issued_at=issued)
    db.session.commit()
    audit.record(Event.MFA_CHALLENGE_ISSUED, user_id=user.id, amr=list(amr))
    return MfaChallenge(mfa_token=token, methods=list(METHODS))


def spend_challenge(jti: str, user_id: uuid.UUID) -> list[str] | None:
    """The challenge's first-factor ``amr`` once it is spent; None if unknown, used or expired."""
    now = tokens.now()
    amr = db.session.execute(
        update(MfaChallengeRecord)
        .where(
            MfaChallengeRecord.jti == jti,
            MfaChallengeRecord.user_id == user_id,
            MfaChallengeRecord.used_at.is_(None),
            MfaChallengeRecord.expires_at > now,
        )
        .values(used_at=now)
        .returning(MfaChallengeRecord.amr)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return [str(method) for method in amr] if amr is not None else None


# --- operations ------------------------------------------------------------------------------
