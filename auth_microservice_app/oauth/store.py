"""Single-use, expiring values of the OAuth flows: the authorization ``state``, the one-time
sign-in ``code`` and the ``link_code`` of a link flow.

Redis holds them (``SET ... EX``, taken with ``GETDEL``); while Redis is down the ``oauth_states``
table does (taken with one ``DELETE ... RETURNING``). Either way a value is taken at most once,
even by concurrent requests, and only the SHA-256 of the secret is stored as its key.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from ..extensions import db
from ..models.base import utcnow
from ..models.oauth import OAuthState
from ..utils.redis_client import OAUTH_ONE_TIME_PREFIX, RedisUnavailable, get_redis

logger = logging.getLogger(__name__)

STATE = "state"
CODE = "code"
#: A link flow's verified identity and its initiator, waiting for ``/link/confirm``.
LINK = "link"


def storage_key(kind: str, secret: str) -> str:
    """``state:<sha256 hex>``: what is stored, never the secret itself."""
    return f"{kind}:{hashlib.sha256(secret.encode()).hexdigest()}"


def put(kind: str, secret: str, payload: dict[str, Any], ttl: int) -> None:
    """Keep ``payload`` under ``secret`` for ``ttl`` seconds (Redis, else the database)."""
    key = storage_key(kind, secret)
    data = json.dumps(payload, separators=(",", ":"))
    try:
        get_redis().run(lambda r: r.set(OAUTH_ONE_TIME_PREFIX + key, data, ex=ttl))
    except RedisUnavailable:
        logger.info("oauth value stored in the database: redis unavailable")
    else:
        return
    now = utcnow()
    # Expired rows of earlier flows are swept here, so the fallback table stays small.
    db.session.execute(delete(OAuthState).where(OAuthState.expires_at <= now))
    db.session.add(OAuthState(key=key, payload=payload, expires_at=now + timedelta(seconds=ttl)))
    db.session.commit()


def take(kind: str, secret: str) -> dict[str, Any] | None:
    """The payload stored under ``secret``, removed in the same step; None if unknown or expired.

    Redis is asked first; a miss (or Redis down) asks the database, where values written during
    an outage live.
    """
    key = storage_key(kind, secret)
    try:
        raw = get_redis().run(lambda r: r.getdel(OAUTH_ONE_TIME_PREFIX + key))
    except RedisUnavailable:
        raw = None
    if isinstance(raw, str):
        payload = json.loads(raw)
        return payload if isinstance(payload, dict) else None
    return _take_from_database(key)


def _take_from_database(key: str) -> dict[str, Any] | None:
    row = db.session.execute(
        delete(OAuthState)
        .where(OAuthState.key == key, OAuthState.expires_at > utcnow())
        .returning(OAuthState.payload)
    ).first()
    db.session.commit()
    if row is None:
        return None
    payload = row[0]
    return payload if isinstance(payload, dict) else None
