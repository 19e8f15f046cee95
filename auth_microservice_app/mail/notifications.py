"""Security notices to the account owner (password changed, 2FA on/off, new sign-in...).

Services call :func:`security_notice` inside their transaction; the email is queued in the
outbox with it and delivered after commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from .. import audit
from ..audit import Event
from . import outbox


def security_notice(user_id: uuid.UUID | str, kind: str, **context: Any) -> None:
    """Tell the user that ``kind`` happened on their account (an email, and a security event).

    ``kind`` names an email template (``password_changed``, ``new_sign_in``,
    ``two_factor_enabled``, ``two_factor_disabled``, ``provider_linked``,
    ``provider_unlinked``); ``context`` must be JSON-serialisable.
    The caller commits.
    """
    context.setdefault("when", audit.now_text())
    outbox.add(outbox.SECURITY_NOTICE, user_id=str(user_id), notice=kind, context=context)
    audit.record(Event(f"notice_{kind}"), user_id=user_id)
