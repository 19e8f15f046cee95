"""Retention: rows nobody can use any more do not pile up, and nothing is kept past its time.

The hourly ``auth.purge_expired`` task (Celery beat) and ``flask maintenance purge`` run
:func:`purge`. Each kind is removed in batches of ``PURGE_BATCH_SIZE`` rows: one
``DELETE ... WHERE key IN (SELECT key ... LIMIT n FOR UPDATE SKIP LOCKED)`` and one commit per
batch, so no statement holds many row locks or a long transaction, and rows a request is
using are skipped until the next run. The counts go to Redis (``auth_purged_rows_total`` in
``/metrics``: the purge runs in a worker or a shell, which Prometheus does not scrape).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from celery import shared_task
from flask import Flask, current_app, has_app_context
from prometheus_client.core import CounterMetricFamily
from sqlalchemy import ColumnElement, and_, delete, or_, select

from ..extensions import db
from ..identity import clients, deletion, ownership, revocation
from ..models import EmailOutbox, EmailToken, OAuthState, RevokedToken, SecurityEvent, UserSession
from ..models.base import utcnow
from ..utils.redis_client import PURGED_ROWS_KEY, RedisUnavailable, get_redis

logger = logging.getLogger(__name__)
#: Sent or skipped outbox rows are kept this long (what an operator looks at after an incident).
OUTBOX_KEPT = timedelta(days=7)
#: Spent and expired link tokens are kept this long (a late click answers "invalid" either way).
LINKS_KEPT = timedelta(days=1)
#: What :func:`purge` removes (the ``kind`` label of ``auth_purged_rows_total``).
KINDS = (
    "unverified_accounts",
    "sessions",
    "revoked_tokens",
    "email_tokens",
    "oauth_states",
    "email_outbox",
    "security_events",
    "anonymised_events",
    "service_clients",
)


def _batch() -> int:
    return max(int(current_app.config["PURGE_BATCH_SIZE"]), 1)


def delete_in_batches(model: Any, key: Any, where: ColumnElement[bool]) -> int:
    """Delete the rows of ``model`` matching ``where``, ``PURGE_BATCH_SIZE`` at a time, each
    batch committed on its own; returns how many went."""
    size, total = _batch(), 0
    while True:
        doomed = select(key).where(where).limit(size).with_for_update(skip_locked=True)
        result = db.session.execute(
            delete(model).where(key.in_(doomed)).execution_options(synchronize_session=False)
        )
        db.session.commit()
        count = int(result.rowcount)  # type: ignore[attr-defined]
        total += count
        if count < size:
            return total


def _until_short(step: Callable[[], int]) -> int:
    """Run a batch step (it commits) until a batch comes back short."""
    size, total = _batch(), 0
    while True:
        count = step()
        total += count
        if count < size:
            return total


def _anonymise_orphans() -> int:
    def step() -> int:
        count = deletion.anonymise_events(deletion.orphaned_events(), limit=_batch())
        db.session.commit()
        return count

    return _until_short(step)


def _events_where(now: datetime) -> ColumnElement[bool] | None:
    days = int(current_app.config["SECURITY_EVENT_RETENTION_DAYS"])
    if days <= 0:
        return None
    return SecurityEvent.occurred_at < now - timedelta(days=days)


def purge() -> dict[str, int]:
    """Remove what has outlived its use; returns how many rows of each kind went.

    - ``unverified_accounts``: past ``UNVERIFIED_ACCOUNT_TTL`` (their sessions revoked first);
    - ``sessions``: see :func:`dead_sessions`;
    - ``revoked_tokens``: past their token's expiry (the token is dead by itself then);
    - ``email_tokens``: spent or expired a day ago;
    - ``oauth_states``: expired;
    - ``email_outbox``: sent or skipped a week ago;
    - ``security_events``: older than ``SECURITY_EVENT_RETENTION_DAYS`` (0: kept);
    - ``anonymised_events``: events naming an account that no longer exists lose the name;
    - ``service_clients``: deleted clients whose tokens can no longer be presented.
    """
    now = utcnow()
    events = _events_where(now)
    removed = {
        "unverified_accounts": _until_short(
            lambda: ownership.purge_expired_unverified(limit=_batch())
        ),
        "sessions": delete_in_batches(UserSession, UserSession.id, dead_sessions(now)),
        "revoked_tokens": delete_in_batches(
            RevokedToken, RevokedToken.jti, RevokedToken.expires_at < now
        ),
        "email_tokens": delete_in_batches(
            EmailToken,
            EmailToken.id,
            or_(EmailToken.expires_at < now - LINKS_KEPT, EmailToken.used_at < now - LINKS_KEPT),
        ),
        "oauth_states": delete_in_batches(OAuthState, OAuthState.key, OAuthState.expires_at < now),
        "email_outbox": delete_in_batches(
            EmailOutbox,
            EmailOutbox.id,
            and_(
                EmailOutbox.status.in_(["sent", "skipped"]),
                EmailOutbox.processed_at < now - OUTBOX_KEPT,
            ),
        ),
        "security_events": 0
        if events is None
        else delete_in_batches(SecurityEvent, SecurityEvent.id, events),
        "anonymised_events": _anonymise_orphans(),
        "service_clients": clients.purge_tombstones(),
    }
    _count(removed)
    return removed


def _count(removed: dict[str, int]) -> None:
    """Add the counts to the Redis hash ``/metrics`` reads; lost (and logged) if Redis is down."""
    changed = {kind: count for kind, count in removed.items() if count}
    if not changed:
        return

    def write(client: Any) -> None:
        pipe = client.pipeline(transaction=False)
        for kind, count in changed.items():
            pipe.hincrby(PURGED_ROWS_KEY, kind, count)
        pipe.execute()

    try:
        get_redis().run(write)
    except RedisUnavailable:
        logger.warning("purge counts not recorded: Redis unavailable")


def purged_counts() -> dict[str, int]:
    """What every purge so far removed, by kind (from Redis; empty while it is down)."""
    try:
        raw = cast("dict[Any, Any]", get_redis().run(lambda r: r.hgetall(PURGED_ROWS_KEY)))
    except RedisUnavailable:
        return {}
    return {_text(kind): int(count) for kind, count in raw.items()}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@shared_task(name="auth.purge_expired")
def purge_expired() -> dict[str, int]:
    """The hourly retention purge (:func:`purge`); returns how many of each kind went."""
    return purge()


def dead_sessions(now: datetime) -> ColumnElement[bool]:
    """The sessions that can no longer matter to a token check.

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
    return or_(
        UserSession.expires_at < now - horizon,
        UserSession.revoked_at < now - revoked_for,
    )


class PurgeCollector:
    """``auth_purged_rows_total{kind}``: the purge's counts, read from Redis at scrape time
    (the purge runs in a Celery worker or a shell; every API process reports the same sums)."""

    def describe(self) -> list[CounterMetricFamily]:
        return []

    def collect(self) -> Iterator[CounterMetricFamily]:
        if not has_app_context():
            return
        family = CounterMetricFamily(
            "auth_purged_rows", "Rows removed by the retention purge, by kind.", labels=["kind"]
        )
        counts = purged_counts()
        for kind in KINDS:
            family.add_metric([kind], float(counts.get(kind, 0)))
        yield family


def init_app(app: Flask) -> None:
    app.extensions["metrics_registry"].register(PurgeCollector())
