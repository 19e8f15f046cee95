"""Security notices to the account owner (password changed, 2FA on/off, new sign-in...).

Services call :func:`security_notice` and never care how it is delivered.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import events


def security_notice(user_id: uuid.UUID | str, kind: str, **context: Any) -> None:
    """Tell the user that ``kind`` happened on their account (recorded as a security event)."""
    events.record(f"notice_{kind}", user_id=user_id, **context)
