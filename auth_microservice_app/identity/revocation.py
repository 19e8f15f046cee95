"""Revocation of access tokens: the database is the record, Redis the fast path.

- Revoking writes the database first (inside the caller's transaction), then Redis after commit.
- Checking asks Redis in one round trip (``MGET`` of the warm marker, the ``jti`` and the ``sid``).
  If Redis is down, or came back empty (no warm marker), the database answers instead.
- An empty Redis is re-warmed from the database by one process (a lock key), in the background;
  until the marker is set again every process keeps asking the database.
- A revocation that could not reach Redis marks the gateway (``lost_writes``); the first call that
  reaches Redis again drops the marker, so the blocklist is rebuilt before it is trusted.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast

from flask import Flask, current_app
from sqlalchemy import select

from .. import metrics
from ..extensions import db
from ..models import RevokedToken, UserSession
from ..models.base import utcnow
from ..utils.redis_client import (
    BLOCKLIST_PREFIX,
    BLOCKLIST_REBUILD_LOCK,
    BLOCKLIST_WARM_KEY,
    REVOKED_SID_PREFIX,
    RedisUnavailable,
    get_redis,
)

logger = logging.getLogger(__name__)
REBUILD_BATCH = 5000


def _ttl(expires_at: datetime) -> int:
    return max(1, int((expires_at - utcnow()).total_seconds()) + 1)


def _sid_ttl() -> int:
    # Access tokens of a revoked session die at most one access lifetime after the revocation.
    config = current_app.config
    return int(config["JWT_ACCESS_TOKEN_EXPIRES"]) + int(config["JWT_LEEWAY"]) + 1


def access_token_horizon() -> timedelta:
    """How long after a session ends (revoked, or past ``expires_at``) one of its access tokens
    may still be presented and accepted: the last one issued lives one access lifetime (and the
    leeway). Past it the session's row means nothing to :func:`is_revoked`."""
    return timedelta(seconds=_sid_ttl())


def is_revoked(jti: str, sid: str) -> bool:
    """Whether an access token (by ``jti``) or its session (by ``sid``) has been revoked."""
    gateway = get_redis()
    if gateway.configured and not gateway.is_open:
        try:
            keys = (BLOCKLIST_WARM_KEY, BLOCKLIST_PREFIX + jti, REVOKED_SID_PREFIX + sid)
            values = cast("list[str | None]", gateway.run(lambda r: r.mget(keys)))
            warm, by_jti, by_sid = values
        except RedisUnavailable:
            pass
        else:
            if warm:
                return bool(by_jti or by_sid)
            _start_rebuild(current_app._get_current_object())  # type: ignore[attr-defined]
    return _is_revoked_in_database(jti, sid)


def _is_revoked_in_database(jti: str, sid: str) -> bool:
    metrics.get().blocklist_fallback.inc()
    if db.session.get(RevokedToken, jti) is not None:
        return True
    try:
        session_id = uuid.UUID(sid)
    except ValueError:
        return True
    row = db.session.execute(
        select(UserSession.revoked_at).where(UserSession.id == session_id)
    ).first()
    # no row: the session went with its account, and a deleted account's tokens are void
    return row is None or row.revoked_at is not None


def record_token_revocation(jti: str, user_id: uuid.UUID, expires_at: datetime) -> None:
    """Add an access token to the record (the caller commits, then calls :func:`publish`)."""
    if db.session.get(RevokedToken, jti) is None:
        db.session.add(RevokedToken(jti=jti, user_id=user_id, expires_at=expires_at))


def record_session_revocation(sessions: Iterable[UserSession], reason: str) -> list[str]:
    """Mark sessions revoked (the caller commits, then calls :func:`publish`); returns their ids."""
    now = utcnow()
    revoked = []
    for session in sessions:
        if session.revoked_at is None:
            session.revoked_at = now
            session.revoked_reason = reason
        revoked.append(str(session.id))
    return revoked


def publish(*, jtis: Iterable[tuple[str, datetime]] = (), sids: Iterable[str] = ()) -> None:
    """Push committed revocations to Redis; if that fails the next contact forces a rebuild."""
    gateway = get_redis()
    if not gateway.configured:
        return
    items = [(BLOCKLIST_PREFIX + jti, _ttl(exp)) for jti, exp in jtis]
    items += [(REVOKED_SID_PREFIX + sid, _sid_ttl()) for sid in sids]
    if not items:
        return

    def write(client: object) -> None:
        pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
        for key, ttl in items:
            pipe.set(key, "1", ex=ttl)
        pipe.execute()

    try:
        gateway.run(write)
    except RedisUnavailable:
        gateway.lost_writes = True
        logger.warning("revocation kept in the database only; blocklist will be rebuilt")


def _start_rebuild(app: Flask) -> None:
    gateway = get_redis()
    try:
        acquired = gateway.run(lambda r: r.set(BLOCKLIST_REBUILD_LOCK, "1", nx=True, ex=60))
    except RedisUnavailable:
        return
    if acquired:
        threading.Thread(target=_rebuild_in_context, args=(app,), daemon=True).start()


def _rebuild_in_context(app: Flask) -> None:
    with app.app_context():
        try:
            count = rebuild_blocklist()
            logger.info("blocklist rebuilt from the database", extra={"entries": count})
        except Exception:
            logger.exception("blocklist rebuild failed")
            get_redis().run(lambda r: r.delete(BLOCKLIST_REBUILD_LOCK))
        finally:
            db.session.remove()


def rebuild_blocklist() -> int:
    """Copy every still-relevant revocation from the database into Redis, then mark it warm.

    :raises RedisUnavailable: if Redis fails midway (the marker stays unset).
    """
    gateway = get_redis()
    now = utcnow()
    written = 0
    tokens = db.session.execute(
        select(RevokedToken.jti, RevokedToken.expires_at).where(RevokedToken.expires_at > now)
    )
    batch: list[tuple[str, int]] = []

    def flush(rows: list[tuple[str, int]]) -> None:
        def write(client: object) -> None:
            pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
            for key, ttl in rows:
                pipe.set(key, "1", ex=ttl)
            pipe.execute()

        gateway.run(write)

    for jti, expires_at in tokens:
        batch.append((BLOCKLIST_PREFIX + jti, _ttl(expires_at)))
        if len(batch) >= REBUILD_BATCH:
            flush(batch)
            written += len(batch)
            batch = []
    horizon = now - timedelta(seconds=_sid_ttl())
    sessions = db.session.execute(
        select(UserSession.id).where(UserSession.revoked_at > horizon)
    ).scalars()
    for sid in sessions:
        batch.append((REVOKED_SID_PREFIX + str(sid), _sid_ttl()))
        if len(batch) >= REBUILD_BATCH:
            flush(batch)
            written += len(batch)
            batch = []
    if batch:
        flush(batch)
        written += len(batch)
    gateway.run(lambda r: r.set(BLOCKLIST_WARM_KEY, utcnow().isoformat()))
    gateway.run(lambda r: r.delete(BLOCKLIST_REBUILD_LOCK))
    return written
