"""Security events: what a user or an auditor asks about.

Each event is one JSON log line (logger ``auth_microservice_app.security``), one row in
``security_events`` (written on its own connection, so it neither commits nor rolls back the
caller's transaction) and, where it stands for one, a Prometheus counter.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import g, has_app_context, has_request_context, request
from sqlalchemy import insert

from .. import metrics
from ..extensions import db
from ..models.security_event import SecurityEvent

logger = logging.getLogger("auth_microservice_app.security")
#: Never persisted even if a caller passes them by mistake (the log filter redacts them too).
_SECRET_KEYS = ("password", "token", "secret", "code")


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
        "user_agent": (request.user_agent.string or "")[:512] or None,
        "request_id": g.get("request_id"),
    }


def record(
    event: str,
    *,
    user_id: uuid.UUID | str | None = None,
    session_id: uuid.UUID | str | None = None,
    in_transaction: bool = False,
    **data: Any,
) -> None:
    """Log, store and count one security event. Never raises: auditing must not break sign-in.

    ``in_transaction``: store the row in the caller's transaction (before its commit), so that
    the event and the change it records commit together, in one round trip and one WAL flush,
    instead of on a connection and a commit of their own.
    """
    clean = _clean(data)
    user, session = _uuid(user_id), _uuid(session_id)
    _log(event, user, session, clean)
    if not has_app_context():
        return
    metrics.count_event(event, clean)
    row = insert(SecurityEvent).values(
        occurred_at=datetime.now(UTC),
        event=event,
        user_id=user,
        session_id=session,
        data=_jsonable(clean),
        **_client(),
    )
    if in_transaction:
        db.session.execute(row)
        return
    try:
        with db.engine.begin() as connection:
            connection.execute(row)
    except Exception:  # noqa: BLE001 - the log line above already holds the event
        logger.warning("security event not stored", extra={"event_name": event})


def record_per_session(
    event: str,
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
        metrics.count_event(event, clean)
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
