"""Security events: what a user or an auditor asks about.

Each event is one JSON log line (logger ``auth_microservice_app.security``), one row in
``security_events`` (written on its own connection, so it neither commits nor rolls back the
caller's transaction) and, where it stands for one, a Prometheus counter.

Events any client can cause at will (:data:`SAMPLED`: refused logins, rate limits, ...) are
counted every time, but stored and logged at most once per ``EVENT_SAMPLE_WINDOW`` seconds for
one account, or one client when no account is named: a flood from one IP would otherwise write
hundreds of rows and a megabyte of logs a second.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from flask import current_app, g, has_app_context, has_request_context, request
from sqlalchemy import func, insert, select

from .extensions import db
from .models.security_event import SecurityEvent
from .utils.redis_client import RedisUnavailable, get_redis


class Event(StrEnum):
    """Every security event the service records: the names in logs, rows and metrics."""

    ACCOUNT_CLAIMED = "account_claimed"
    ACCOUNT_DELETED = "account_deleted"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_ENABLED = "account_enabled"
    BACKUP_CODES_REGENERATED = "backup_codes_regenerated"
    CLIENT_AUTH_FAILED = "client_auth_failed"
    CLIENT_CREATED = "client_created"
    CLIENT_DELETED = "client_deleted"
    CLIENT_SECRET_ROTATED = "client_secret_rotated"  # noqa: S105 - an event name
    EMAIL_BUDGET_SPENT = "email_budget_spent"
    EMAIL_CHANGE_REQUESTED = "email_change_requested"
    EMAIL_CHANGED = "email_changed"
    EMAIL_FAILED = "email_failed"
    EMAIL_SENT = "email_sent"
    EMAIL_VERIFIED = "email_verified"
    LOGGED_OUT_EVERYWHERE = "logged_out_everywhere"
    LOGIN_FAILED = "login_failed"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_THROTTLED = "login_throttled"
    MFA_CHALLENGE_ISSUED = "mfa_challenge_issued"
    MFA_ENROLLMENT_REQUIRED = "mfa_enrollment_required"
    MFA_CODE_REJECTED = "mfa_code_rejected"
    MFA_SUCCEEDED = "mfa_succeeded"
    NOTICE_NEW_SIGN_IN = "notice_new_sign_in"
    NOTICE_PASSWORD_CHANGED = "notice_password_changed"  # noqa: S105 - an event name
    NOTICE_PROVIDER_LINKED = "notice_provider_linked"
    NOTICE_PROVIDER_UNLINKED = "notice_provider_unlinked"
    NOTICE_TWO_FACTOR_DISABLED = "notice_two_factor_disabled"
    NOTICE_TWO_FACTOR_ENABLED = "notice_two_factor_enabled"
    NOTICE_TWO_FACTOR_RESET = "notice_two_factor_reset"
    OAUTH_FAILED = "oauth_failed"
    OAUTH_LINKED = "oauth_linked"
    OAUTH_LINK_PENDING = "oauth_link_pending"
    OAUTH_LINK_REFUSED = "oauth_link_refused"
    OAUTH_SIGN_IN = "oauth_sign_in"
    OAUTH_UNLINKED = "oauth_unlinked"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an event name
    RATE_LIMITED = "rate_limited"
    REAUTHENTICATION_FAILED = "reauthentication_failed"
    ROLES_CHANGED = "roles_changed"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105 - an event name
    SESSION_REVOKED = "session_revoked"
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - an event name
    TWO_FACTOR_DISABLED = "two_factor_disabled"
    TWO_FACTOR_DISABLE_FAILED = "two_factor_disable_failed"
    TWO_FACTOR_ENABLED = "two_factor_enabled"
    TWO_FACTOR_ENABLE_FAILED = "two_factor_enable_failed"
    TWO_FACTOR_RESET = "two_factor_reset"
    TWO_FACTOR_SETUP_STARTED = "two_factor_setup_started"
    USER_REGISTERED = "user_registered"
    USER_UPDATED = "user_updated"


logger = logging.getLogger("auth_microservice_app.security")
#: Events a client can trigger at will; see the module docstring.
SAMPLED = frozenset(
    {
        Event.RATE_LIMITED,
        Event.LOGIN_FAILED,
        Event.LOGIN_THROTTLED,
        Event.MFA_CODE_REJECTED,
        Event.OAUTH_FAILED,
        Event.EMAIL_BUDGET_SPENT,
        Event.CLIENT_AUTH_FAILED,
    }
)
SAMPLE_PREFIX = "auth:event-sample:"
_LOCAL_SAMPLES_LIMIT = 10_000
#: Never persisted even if a caller passes them by mistake (the log filter redacts them too).
_SECRET_KEYS = ("password", "token", "secret", "code")


#: security event -> (metric attribute, labels); what record() counts by itself.
EVENT_METRICS: dict[Event, tuple[str, Callable[[dict[str, Any]], dict[str, str]]]] = {
    Event.LOGIN_SUCCEEDED: ("logins", lambda d: {"result": "success"}),
    Event.LOGIN_FAILED: (
        "logins",
        lambda d: {"result": str(d.get("reason", "invalid_credentials"))},
    ),
    Event.LOGIN_THROTTLED: ("logins", lambda d: {"result": "locked"}),
    Event.MFA_CHALLENGE_ISSUED: ("logins", lambda d: {"result": "mfa_required"}),
    Event.USER_REGISTERED: ("registrations", lambda d: {"via": str(d.get("via", "password"))}),
    Event.REFRESH_TOKEN_REUSED: ("refresh_reuse", lambda d: {}),
    Event.SESSION_REVOKED: ("revocations", lambda d: {"kind": "session"}),
    Event.TOKEN_REVOKED: ("revocations", lambda d: {"kind": "access_token"}),
    Event.LOGGED_OUT_EVERYWHERE: ("revocations", lambda d: {"kind": "all_sessions"}),
    Event.EMAIL_SENT: ("emails", lambda d: {"status": "sent"}),
    Event.EMAIL_FAILED: ("emails", lambda d: {"status": "failed"}),
    Event.RATE_LIMITED: ("rate_limited", lambda d: {"endpoint": str(d.get("endpoint"))}),
    Event.OAUTH_SIGN_IN: (
        "oauth_sign_ins",
        lambda d: {"provider": str(d.get("provider")), "result": str(d.get("result", "success"))},
    ),
    Event.OAUTH_FAILED: (
        "oauth_sign_ins",
        lambda d: {"provider": str(d.get("provider")), "result": str(d.get("reason", "failed"))},
    ),
}

TWO_FACTOR_EVENTS = {
    Event.TWO_FACTOR_ENABLED,
    Event.TWO_FACTOR_DISABLED,
    Event.MFA_SUCCEEDED,
    Event.MFA_CODE_REJECTED,
    Event.BACKUP_CODES_REGENERATED,
}


def count_event(event: Event, data: dict[str, Any]) -> None:
    """Move the counter that a security event stands for (no-op outside an app)."""
    metrics = current_app.extensions.get("auth_metrics")
    if metrics is None:
        return
    if "actor_id" in data:  # an administrator's (or an operator's) action
        metrics.admin_actions.labels(action=event).inc()
    if event in TWO_FACTOR_EVENTS:
        metrics.two_factor.labels(event=event).inc()
        return
    mapping = EVENT_METRICS.get(event)
    if mapping is not None:
        attribute, labels = mapping
        metric = getattr(metrics, attribute)
        label_values = labels(data)
        (metric.labels(**label_values) if label_values else metric).inc()


def _uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _client() -> dict[str, str | None]:
    if not has_request_context():
        return {"ip": None, "user_agent": None, "request_id": None}
    return {
        "ip": request.remote_addr,
        "user_agent": (request.user_agent.string or "")[:256] or None,
        "request_id": g.get("request_id"),
    }


def record(
    event: Event,
    *,
    user_id: uuid.UUID | str | None = None,
    session_id: uuid.UUID | str | None = None,
    in_transaction: bool = False,
    anonymous: bool = False,
    **data: Any,
) -> None:
    """Log, store and count one security event. Never raises: auditing must not break sign-in.

    ``anonymous``: store no IP, user agent or request id either (an account's deletion).

    ``in_transaction``: store the row in the caller's transaction (before its commit), so that
    the event and the change it records commit together, in one round trip and one WAL flush,
    instead of on a connection and a commit of their own.
    """
    clean = _clean(data)
    user, session = _uuid(user_id), _uuid(session_id)
    if event in SAMPLED and has_app_context() and not _first_in_window(event, user):
        count_event(event, clean)
        return
    _log(event, user, session, clean)
    if not has_app_context():
        return
    count_event(event, clean)
    row = insert(SecurityEvent).values(
        occurred_at=datetime.now(UTC),
        event=event,
        user_id=user,
        session_id=session,
        data=_jsonable(clean),
        **(_client() if not anonymous else {"ip": None, "user_agent": None, "request_id": None}),
    )
    if in_transaction:
        db.session.execute(row)
        return
    try:
        with db.engine.begin() as connection:
            connection.execute(row)
    except Exception:  # noqa: BLE001 - the log line above already holds the event
        logger.warning("security event not stored", extra={"event_name": event})


class _LocalSamples:
    """Which (event, subject) pairs were seen in their window, per process, bounded."""

    def __init__(self) -> None:
        self._until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: str, window: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._until.get(key, 0.0) > now:
                return False
            self._until[key] = now + window
            self._until.move_to_end(key)
            while len(self._until) > _LOCAL_SAMPLES_LIMIT:
                self._until.popitem(last=False)
            return True


_local_samples = _LocalSamples()


def _first_in_window(event: str, user: uuid.UUID | None) -> bool:
    """Whether this is the first ``event`` of its subject (the account, else the client IP)
    in the current window; one ``SET NX`` in Redis, a per-process table while it is down."""
    window = int(current_app.config["EVENT_SAMPLE_WINDOW"])
    if window <= 0:
        return True
    subject = str(user) if user else (request.remote_addr if has_request_context() else None)
    digest = hashlib.sha256(f"{event}:{subject}".encode()).hexdigest()[:32]
    key = SAMPLE_PREFIX + digest
    try:
        return bool(get_redis().run(lambda r: r.set(key, "1", nx=True, ex=window)))
    except RedisUnavailable:
        return _local_samples.first(key, window)


def record_per_session(
    event: Event,
    session_ids: Sequence[uuid.UUID | str],
    *,
    user_id: uuid.UUID | str | None,
    **data: Any,
) -> None:
    """:func:`record` with ``in_transaction=True`` once for each of ``session_ids``: one log
    line and one count each, the rows written by one multi-row INSERT (hundreds of sessions
    revoked at once cost one statement, not one round trip each). Like that call, a database
    error surfaces in the caller's transaction, which then fails as a whole."""
    if not session_ids:
        return
    clean = _clean(data)
    user = _uuid(user_id)
    sessions = [_uuid(session_id) for session_id in session_ids]
    for session in sessions:
        _log(event, user, session, clean)
    if not has_app_context():
        return
    for _ in sessions:
        count_event(event, clean)
    common = {
        "occurred_at": datetime.now(UTC),
        "event": event,
        "user_id": user,
        "data": _jsonable(clean),
        **_client(),
    }
    db.session.execute(
        insert(SecurityEvent), [{**common, "session_id": session} for session in sessions]
    )


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not any(s in k.lower() for s in _SECRET_KEYS)}


def _log(
    event: str, user: uuid.UUID | None, session: uuid.UUID | None, clean: dict[str, Any]
) -> None:
    logger.info(
        event,
        extra={
            "event": event,
            "user_id": str(user) if user else None,
            "session_id": str(session) if session else None,
            **clean,
        },
    )


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool | list | None) else str(v)
        for k, v in data.items()
    }


def now_text() -> str:
    """The time as people read it in a notice."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def list_events(user_id: str, *, page: int, per_page: int) -> tuple[list[SecurityEvent], int]:
    """The user's own security events, newest first, and how many there are in all."""
    owner = uuid.UUID(user_id)
    total = db.session.execute(
        select(func.count()).select_from(SecurityEvent).where(SecurityEvent.user_id == owner)
    ).scalar_one()
    rows = db.session.execute(
        select(SecurityEvent)
        .where(SecurityEvent.user_id == owner)
        .order_by(SecurityEvent.occurred_at.desc(), SecurityEvent.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).scalars()
    return list(rows), int(total)


# --- administration --------------------------------------------------------------------------
