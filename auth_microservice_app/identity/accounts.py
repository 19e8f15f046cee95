"""What an administrator or an operator does to an account: roles, status, profile fields,
sessions, the second factor, creating one from a shell.

Each public function is one unit of work: it commits once, or raises. Every change is a
security event carrying ``actor_id`` (the acting admin; None from the CLI, with
``via="cli"``). Losing a role or being disabled revokes every session of the user in the same
commit, and publishes the revocation at once: the user's access tokens stop working on the
next request, not when they expire (they carry the roles).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from .. import audit
from ..audit import Event
from ..errors import Conflict, EmailTaken, NotFound, ValidationFailed
from ..extensions import db
from ..mail.notifications import security_notice
from ..models import User
from ..models.base import utcnow
from ..models.two_factor import BackupCode, MfaChallengeRecord, TwoFactorCredential
from .deletion import delete_account
from .directory import get_user, has_role
from .hashing import hash_password
from .passwords import validate_new_password
from .sessions import revoke_other_sessions
from .signin import needs_enrollment
from .users import find_user_by_email

#: The built-in role that the administration API and its guards are about.
ADMIN_ROLE = "admin"
#: ``amr`` values that stand for a second factor (a TOTP or backup code; a user-verified passkey).
SECOND_FACTORS = frozenset({"otp", "mfa"})
ROLE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_ROLES = 20


def normalize_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    """The roles, each once, in the given order.

    :raises ValidationFailed: a role that is not a lowercase slug, or too many roles.
    """
    wrong = [role for role in roles if not isinstance(role, str) or not ROLE_PATTERN.match(role)]
    if wrong:
        raise ValidationFailed(
            "Roles are lowercase slugs: a letter, then letters, digits, - or _ (up to 32).",
            details={"roles": [f"Not a valid role: {role!r}." for role in wrong]},
        )
    unique = list(dict.fromkeys(roles))
    if len(unique) > MAX_ROLES:
        raise ValidationFailed(details={"roles": [f"At most {MAX_ROLES} roles."]})
    return unique


def _actor(actor_id: str | uuid.UUID | None) -> dict[str, Any]:
    return {"actor_id": str(actor_id)} if actor_id else {"actor_id": None, "via": "cli"}


def _is_admin(user: User) -> bool:
    return user.is_active and ADMIN_ROLE in (user.roles or [])


def _ensure_another_admin(user: User) -> None:
    """Refuse to take away the last active admin.

    The active admins' rows are locked (``FOR UPDATE``) before they are counted, so two admins
    demoting each other at once cannot both succeed: the second waits, then counts again.

    :raises Conflict: ``user`` is the only active admin.
    """
    admins = db.session.execute(
        select(User.id, User.roles)
        .where(User.is_active.is_(True), has_role(ADMIN_ROLE))
        .with_for_update()
    ).all()
    others = [row.id for row in admins if ADMIN_ROLE in row.roles and row.id != user.id]
    if not others:
        db.session.rollback()
        raise Conflict("This is the last admin: make another admin first.")


@dataclass(frozen=True)
class UserUpdate:
    user: User
    #: Sessions the change revoked (a lost role, a disable); 0 otherwise.
    sessions_revoked: int


def update_user(
    actor_id: str | uuid.UUID | None, user_id: str | uuid.UUID, changes: Mapping[str, Any]
) -> UserUpdate:
    """Change any of ``roles``, ``disabled``, ``email_verified``, ``name`` of a user.

    Losing a role or being disabled revokes every session of the user at once.

    :raises NotFound: no such user.
    :raises ValidationFailed: a role is not a slug.
    :raises Conflict: an admin removing their own admin role or disabling themselves, or the
        change would leave no active admin.
    """
    user = get_user(user_id)
    old_roles = list(user.roles or [])
    roles = normalize_roles(changes["roles"]) if "roles" in changes else old_roles
    disable = changes.get("disabled") is True and user.is_active
    demoted = ADMIN_ROLE in old_roles and ADMIN_ROLE not in roles
    if actor_id is not None and str(actor_id) == str(user.id) and (demoted or disable):
        raise Conflict("You cannot remove your own admin role or disable your own account.")
    if _is_admin(user) and (demoted or disable):
        _ensure_another_admin(user)
    actor = _actor(actor_id)
    lost = [role for role in old_roles if role not in roles]
    if roles != old_roles:
        user.roles = roles
        audit.record(
            Event.ROLES_CHANGED,
            user_id=user.id,
            in_transaction=True,
            roles=roles,
            previous_roles=old_roles,
            **actor,
        )
    _apply_status(user, changes, actor)
    _apply_profile(user, changes, actor)
    # a new role that requires a second factor the user lacks: no session may keep going
    unenrolled = roles != old_roles and needs_enrollment(user)
    if lost or disable or unenrolled:
        reason = "account_disabled" if disable else "roles_changed"
        return UserUpdate(user, revoke_other_sessions(user.id, None, reason))  # commits it all
    db.session.commit()
    return UserUpdate(user, 0)


def _apply_status(user: User, changes: Mapping[str, Any], actor: dict[str, Any]) -> None:
    if "disabled" not in changes or changes["disabled"] is (not user.is_active):
        return
    user.is_active = not changes["disabled"]
    event = Event.ACCOUNT_DISABLED if changes["disabled"] else Event.ACCOUNT_ENABLED
    audit.record(event, user_id=user.id, in_transaction=True, **actor)


def _apply_profile(user: User, changes: Mapping[str, Any], actor: dict[str, Any]) -> None:
    changed: list[str] = []
    if "email_verified" in changes and changes["email_verified"] is not user.email_verified:
        user.email_verified_at = utcnow() if changes["email_verified"] else None
        changed.append("email_verified")
    if "name" in changes and changes["name"] != user.name:
        user.name = changes["name"]
        changed.append("name")
    if changed:
        audit.record(
            Event.USER_UPDATED, user_id=user.id, in_transaction=True, fields=changed, **actor
        )


def revoke_sessions(actor_id: str | uuid.UUID | None, user_id: str | uuid.UUID) -> int:
    """End every session of a user (their tokens stop working at once); returns how many.

    :raises NotFound: no such user.
    """
    user = get_user(user_id)
    count = revoke_other_sessions(user.id, None, "admin")
    audit.record(Event.LOGGED_OUT_EVERYWHERE, user_id=user.id, sessions=count, **_actor(actor_id))
    return count


def reset_two_factor(actor_id: str | uuid.UUID | None, user_id: str | uuid.UUID) -> int:
    """Remove a user's second factor (the TOTP secret, the backup codes, pending challenges),
    revoke every session and mail the user a notice; returns how many sessions were revoked.

    For a user who lost their authenticator and their codes: they sign in with the first
    factor alone next, and may enrol again.

    :raises NotFound: no such user.
    :raises Conflict: the user has no second factor (nor a pending enrolment).
    """
    user = get_user(user_id)
    uid = user.id
    if db.session.get(TwoFactorCredential, uid) is None:
        raise Conflict("This user has no two-factor authentication to reset.")
    db.session.execute(delete(BackupCode).where(BackupCode.user_id == uid))
    db.session.execute(delete(MfaChallengeRecord).where(MfaChallengeRecord.user_id == uid))
    db.session.execute(delete(TwoFactorCredential).where(TwoFactorCredential.user_id == uid))
    audit.record(Event.TWO_FACTOR_RESET, user_id=uid, in_transaction=True, **_actor(actor_id))
    security_notice(uid, "two_factor_reset")
    return revoke_other_sessions(uid, None, "two_factor_reset")  # commits it all


def create_user(
    email: str, *, password: str | None = None, admin: bool = False, name: str | None = None
) -> User:
    """Create an account from a shell: its email counts as verified (the operator vouches for
    it); without a password the user signs in by magic link or sets one with "forgot
    password". ``admin`` adds the ``admin`` role to ``user``.

    :raises EmailTaken: an account has this email already.
    :raises WeakPassword: the password fails the policy.
    """
    if find_user_by_email(email) is not None:
        raise EmailTaken()
    password_hash = hash_password(validate_new_password(password, email)) if password else None
    user = User(
        id=uuid.uuid4(),
        email=email,
        name=name,
        password_hash=password_hash,
        email_verified_at=utcnow(),
        roles=["user", ADMIN_ROLE] if admin else ["user"],
    )
    db.session.add(user)
    audit.record(
        Event.USER_REGISTERED, user_id=user.id, in_transaction=True, via="cli", roles=user.roles
    )
    db.session.commit()
    return user


def delete_user(actor_id: str | uuid.UUID | None, user_id: str | uuid.UUID) -> None:
    """Delete an account as ``DELETE /me`` does (see :mod:`.deletion`), for an admin or the CLI.

    :raises NotFound: no such user.
    :raises Conflict: the user is the last active admin (make another admin first).
    """
    user = get_user(user_id)
    if actor_id is not None and str(actor_id) == str(user.id):
        raise Conflict("Delete your own account with DELETE /api/v1/auth/me.")
    if _is_admin(user):
        _ensure_another_admin(user)
        db.session.rollback()  # the lock was only for the count
    delete_account(user.id, actor_id=uuid.UUID(str(actor_id)) if actor_id else None)


def user_id_for(email: str) -> uuid.UUID:
    """:raises NotFound: no account has this email."""
    user = find_user_by_email(email)
    if user is None:
        raise NotFound("No account has this email.")
    return user.id


def disable_user(email: str) -> int:
    """Disable an account (from a shell) and end every one of its sessions; returns how many.

    :raises NotFound: no account has this email.
    :raises Conflict: it is the last active admin.
    """
    return update_user(None, user_id_for(email), {"disabled": True}).sessions_revoked


def revoke_user_sessions(email: str) -> int:
    """End every session of an account (an operator's "sign out everywhere")."""
    return revoke_sessions(None, user_id_for(email))
