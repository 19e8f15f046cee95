"""Revocation of access tokens: the database is the record, Redis the fast path.

- Revoking writes the database first (inside the caller's transaction), then Redis after commit.
- Checking asks Redis in one round trip (``MGET`` of the warm marker, the ``jti`` and the ``sid``;
  for a service token the client's revocation instant instead of a session).
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
from ..models import RevokedToken, ServiceClient, UserSession
from ..models.base import utcnow
from ..utils.redis_client import (
    BLOCKLIST_PREFIX,
    BLOCKLIST_REBUILD_LOCK,
    BLOCKLIST_WARM_KEY,
    REVOKED_CLIENT_PREFIX,
    REVOKED_SID_PREFIX,
    RedisUnavailable,
    get_redis,
)

logger = logging.getLogger(__name__)
REBUILD_BATCH = 5000
#: A ``revoked_tokens`` row keyed ``sid:<session id>`` stands for a session deleted with its
#: account: the session's row is gone, so without it a rebuilt blocklist would forget that the
#: session's access tokens are void (see :func:`record_deleted_sessions`).
SESSION_TOMBSTONE = "sid:"


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


def service_token_horizon() -> timedelta:
    """How long a service token lives (and its leeway): a client's revocation matters so long."""
    config = current_app.config
    return timedelta(seconds=int(config["SERVICE_TOKEN_EXPIRES"]) + int(config["JWT_LEEWAY"]) + 1)


def is_revoked(jti: str, sid: str) -> bool:
    """Whether an access token (by ``jti``) or its session (by ``sid``) has been revoked."""
    found = _ask_redis(BLOCKLIST_PREFIX + jti, REVOKED_SID_PREFIX + sid)
    if found is not None:
        return bool(found[0] or found[1])
    return _is_revoked_in_database(jti, sid)


def is_service_token_revoked(jti: str, client_id: str, issued_at: int) -> bool:
    """Whether a service token (by ``jti``) or every token of its client up to now is revoked."""
    found = _ask_redis(BLOCKLIST_PREFIX + jti, REVOKED_CLIENT_PREFIX + client_id)
    if found is not None:
        by_jti, revoked_until = found
        return bool(by_jti) or (revoked_until is not None and issued_at <= int(revoked_until))
    return _is_service_token_revoked_in_database(jti, client_id, issued_at)


def _ask_redis(*keys: str) -> list[str | None] | None:
    """The values of ``keys`` in one round trip, or None when only the database can answer."""
    gateway = get_redis()
    if gateway.configured and not gateway.is_open:
        everything = (BLOCKLIST_WARM_KEY, *keys)
        try:
            values = cast("list[str | None]", gateway.run(lambda r: r.mget(everything)))
        except RedisUnavailable:
            return None
        if values[0]:
            return values[1:]
        _start_rebuild(current_app._get_current_object())  # type: ignore[attr-defined]
    return None


def _is_service_token_revoked_in_database(jti: str, client_id: str, issued_at: int) -> bool:
    metrics.get().blocklist_fallback.inc()
    if db.session.get(RevokedToken, jti) is not None:
        return True
    row = db.session.execute(
        select(ServiceClient.disabled_at, ServiceClient.tokens_revoked_at).where(
            ServiceClient.client_id == client_id
        )
    ).first()
    if row is None or row.disabled_at is not None:
        return True  # deleted (the tombstone is disabled too) or disabled
    return row.tokens_revoked_at is not None and issued_at <= int(row.tokens_revoked_at.timestamp())


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


def record_token_revocation(
    jti: str, user_id: uuid.UUID | None, expires_at: datetime, client_id: str | None = None
) -> None:
    """Add an access token to the record (the caller commits, then calls :func:`publish`).

    A user's token names its ``user_id``; a service token its ``client_id``.
    """
    if db.session.get(RevokedToken, jti) is None:
        db.session.add(
            RevokedToken(jti=jti, user_id=user_id, client_id=client_id, expires_at=expires_at)
        )


def record_deleted_sessions(session_ids: Iterable[str]) -> None:
    """Keep, for one access lifetime, the revocation of sessions deleted with their account.

    The database fallback already counts a missing session as revoked, but a blocklist rebuilt
    from the database (after Redis lost its data) would not hold their ids, and Redis would
    then call their last access tokens valid. A tombstone names no user: only the session id.
    The caller commits, then publishes the ids (:func:`publish`).
    """
    expires_at = utcnow() + access_token_horizon()
    for sid in session_ids:
        key = SESSION_TOMBSTONE + sid
        if db.session.get(RevokedToken, key) is None:
            db.session.add(RevokedToken(jti=key, user_id=None, expires_at=expires_at))


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


def publish(
    *,
    jtis: Iterable[tuple[str, datetime]] = (),
    sids: Iterable[str] = (),
    clients: Iterable[tuple[str, datetime]] = (),
) -> None:
    """Push committed revocations to Redis; if that fails the next contact forces a rebuild.

    ``clients``: (client id, instant) pairs: that client's tokens issued until then are void.
    """
    gateway = get_redis()
    if not gateway.configured:
        return
    items = [(BLOCKLIST_PREFIX + jti, "1", _ttl(exp)) for jti, exp in jtis]
    items += [(REVOKED_SID_PREFIX + sid, "1", _sid_ttl()) for sid in sids]
    items += _client_items(clients)
    if not items:
        return

    def write(client: object) -> None:
        pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
        for key, value, ttl in items:
            pipe.set(key, value, ex=ttl)
        pipe.execute()

    try:
        gateway.run(write)
    except RedisUnavailable:
        gateway.lost_writes = True
        logger.warning("revocation kept in the database only; blocklist will be rebuilt")


def _client_items(clients: Iterable[tuple[str, datetime]]) -> list[tuple[str, str, int]]:
    ttl = int(service_token_horizon().total_seconds())
    return [
        (REVOKED_CLIENT_PREFIX + client_id, str(int(instant.timestamp())), ttl)
        for client_id, instant in clients
    ]


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


def _blocklist_key(jti: str) -> str:
    """The Redis key of a ``revoked_tokens`` row: a token's, or a deleted session's."""
    if jti.startswith(SESSION_TOMBSTONE):
        return REVOKED_SID_PREFIX + jti.removeprefix(SESSION_TOMBSTONE)
    return BLOCKLIST_PREFIX + jti


def rebuild_blocklist() -> int:
    """Copy every still-relevant revocation from the database into Redis, then mark it warm.

    :raises RedisUnavailable: if Redis fails midway (the marker stays unset).
    """
    gateway = get_redis()
    now = utcnow()
    written = 0
    batch: list[tuple[str, str, int]] = []

    def flush() -> None:
        nonlocal batch, written
        rows, batch = batch, []

        def write(client: object) -> None:
            pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
            for key, value, ttl in rows:
                pipe.set(key, value, ex=ttl)
            pipe.execute()

        gateway.run(write)
        written += len(rows)

    def add(item: tuple[str, str, int]) -> None:
        batch.append(item)
        if len(batch) >= REBUILD_BATCH:
            flush()

    tokens = db.session.execute(
        select(RevokedToken.jti, RevokedToken.expires_at).where(RevokedToken.expires_at > now)
    )
    for jti, expires_at in tokens:
        add((_blocklist_key(jti), "1", _ttl(expires_at)))
    horizon = now - timedelta(seconds=_sid_ttl())
    sessions = db.session.execute(
        select(UserSession.id).where(UserSession.revoked_at > horizon)
    ).scalars()
    for sid in sessions:
        add((REVOKED_SID_PREFIX + str(sid), "1", _sid_ttl()))
    clients = db.session.execute(
        select(ServiceClient.client_id, ServiceClient.tokens_revoked_at).where(
            ServiceClient.tokens_revoked_at > now - service_token_horizon()
        )
    )
    for item in _client_items((client_id, at) for client_id, at in clients if at):
        add(item)
    if batch:
        flush()
    gateway.run(lambda r: r.set(BLOCKLIST_WARM_KEY, utcnow().isoformat()))
    gateway.run(lambda r: r.delete(BLOCKLIST_REBUILD_LOCK))
    return written
