"""Security events: what a user or an auditor asks about, as one JSON log stream."""

from __future__ import annotations

import logging
import uuid
from typing import Any

logger = logging.getLogger("auth_microservice_app.security")


def record(
    event: str,
    *,
    user_id: uuid.UUID | str | None = None,
    session_id: uuid.UUID | str | None = None,
    **data: Any,
) -> None:
    """Log one security event (never with secrets: the log filter redacts them regardless)."""
    logger.info(
        event,
        extra={
            "event": event,
            "user_id": str(user_id) if user_id else None,
            "session_id": str(session_id) if session_id else None,
            **data,
        },
    )
