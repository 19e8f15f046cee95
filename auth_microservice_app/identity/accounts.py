"""What an operator does to an account: disable it, sign it out everywhere."""

from __future__ import annotations

from .. import audit
from ..audit import Event
from ..errors import NotFound
from .deletion import delete_account
from .sessions import revoke_other_sessions
from .users import find_user_by_email

__all__ = ["delete_account", "disable_user", "revoke_user_sessions"]


def disable_user(email: str) -> int:
    """Disable an account and end every one of its sessions at once; returns how many.

    :raises NotFound: no account has this email.
    """
    user = find_user_by_email(email)
    if user is None:
        raise NotFound("No such user.")
    user.is_active = False
    count = revoke_other_sessions(user.id, None, "account_disabled")  # commits both
    audit.record(Event.ACCOUNT_DISABLED, user_id=user.id, sessions=count)
    return count


def revoke_user_sessions(email: str) -> int:
    """End every session of an account (an operator's "sign out everywhere")."""
    user = find_user_by_email(email)
    if user is None:
        raise NotFound("No such user.")
    count = revoke_other_sessions(user.id, None, "admin")
    audit.record(Event.LOGGED_OUT_EVERYWHERE, user_id=user.id, sessions=count, by="admin")
    return count
