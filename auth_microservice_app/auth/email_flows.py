"""Flows that go through the user's mailbox: verification, password reset, magic links, and the
password change that notifies it. Requests that name an address answer the same whether or not
the address exists: they only queue an outbox row, and the worker decides what to send.
"""

from __future__ import annotations

import uuid

from .. import audit
from ..audit import Event
from ..errors import AccountDisabled, AuthenticationFailed, InvalidLinkToken
from ..extensions import db
from ..identity import ownership, passwords, revocation, sessions, signin, throttle, users
from ..identity.hashing import hash_password, verify_password
from ..identity.passwords import normalize_password
from ..mail import budgets, links, outbox
from ..mail.notifications import security_notice
from ..models import User
from ..models.base import utcnow


def _queue(kind: str, email: str) -> None:
    """Queue ``kind`` for ``email`` if the address's budget for it is not spent
    (:mod:`.budgets`); the caller answers 202 either way."""
    if not budgets.spend(kind, email):
        audit.record(Event.EMAIL_BUDGET_SPENT, kind=kind)
        return
    outbox.add(kind, email=email)
    db.session.commit()


def request_verification(email: str) -> None:
    """Queue a new verification link for ``email`` (sent only to an unverified account)."""
    _queue(outbox.VERIFY_EMAIL_REQUEST, email)


def request_password_reset(email: str) -> None:
    """Queue a reset link for ``email`` (sent only when an active account has it)."""
    _queue(outbox.PASSWORD_RESET_REQUEST, email)


def request_magic_link(email: str) -> None:
    """Queue a sign-in link for ``email`` (sent only when an active account has it)."""
    _queue(outbox.MAGIC_LINK_REQUEST, email)


def _active_user(user_id: uuid.UUID) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise InvalidLinkToken()
    if not user.is_active:
        db.session.rollback()
        raise AccountDisabled()
    return user


def verify_email(token: str) -> User:
    """Mark the address of the token's user verified.

    :raises InvalidLinkToken: unknown, used or expired token.
    """
    user = db.session.get(User, links.consume(token, links.VERIFY_EMAIL))
    if user is None:
        raise InvalidLinkToken()
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    db.session.commit()
    audit.record(Event.EMAIL_VERIFIED, user_id=user.id)
    return user


def reset_password(token: str, password: str) -> None:
    """Set a new password from a reset link; every session of the user is revoked.

    The password is checked before the token is spent, so a weak choice can be retried.

    :raises InvalidLinkToken: unknown, used or expired token.
    :raises WeakPassword: the new password fails the policy.
    """
    user = _active_user(links.peek(token, links.RESET_PASSWORD))
    normalized = passwords.validate_new_password(password, user.email)
    links.consume(token, links.RESET_PASSWORD)
    # Whoever read the reset mail controls the address: it is verified now, and if it was
    # not, nothing the registrant attached survives (see ownership.claim).
    claimed = ownership.claim(user, proof="password_reset")
    user.password_hash = hash_password(normalized)
    ownership.void_links(user.id)  # a magic link sent before the reset must not sign in after
    _notify_password_change(user, "reset")
    sessions.revoke_other_sessions(user.id, None, "password_reset")  # commits
    revocation.publish(sids=claimed)
    throttle.succeeded(user.email)
    audit.record(Event.PASSWORD_RESET, user_id=user.id)


def change_password(
    user_id: str, session_id: str, current: str, new: str, client: sessions.ClientInfo
) -> sessions.TokenPair:
    """Replace the password after re-checking the current one; returns a fresh pair in a new
    session and revokes every other session (the current one included).

    :raises AuthenticationFailed: the current password is wrong (401 ``invalid_credentials``).
    :raises WeakPassword: the new password fails the policy.
    """
    user = users.get_active_user(user_id)
    throttle.reserve(user.email)
    with throttle.returned_if_unchecked(user.email):
        if user.password_hash is None or not verify_password(
            user.password_hash, normalize_password(current)
        ):
            raise AuthenticationFailed("The current password is incorrect.")
    throttle.succeeded(user.email)
    normalized = passwords.validate_new_password(new, user.email)
    user.password_hash = hash_password(normalized)
    ownership.void_links(user.id)
    _notify_password_change(user, "change")
    sessions.revoke_other_sessions(user.id, None, "password_changed")  # commits
    audit.record(Event.PASSWORD_CHANGED, user_id=user.id, session_id=session_id)
    return sessions.start_session(user, client, amr=["pwd"])


def sign_in_with_magic_link(token: str, client: sessions.ClientInfo) -> signin.SignInResult:
    """Spend a magic link: the email is proven (and so verified); 2FA still applies.

    The first proof of an unverified address hands the account over clean
    (:func:`.ownership.claim`): the registrant's password, links, 2FA and sessions go.

    :raises InvalidLinkToken: unknown, used or expired token.
    :raises AccountDisabled: the account was disabled.
    """
    user = _active_user(links.consume(token, links.MAGIC_LINK))
    claimed = ownership.claim(user, proof="magic_link")
    db.session.commit()
    revocation.publish(sids=claimed)
    return signin.sign_in(user, client, amr=["email"])


def _notify_password_change(user: User, how: str) -> None:
    """Queue the notice in the caller's transaction (committed with the password)."""
    security_notice(user.id, "password_changed", how=how)
