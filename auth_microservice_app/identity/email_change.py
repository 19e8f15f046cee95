"""Changing the account's address: asked with a fresh sign-in, confirmed from the new mailbox.

- The request (fresh access token, and the password when the account has one) reserves one
  link bound to the account and the new address (:func:`..mail.links.reserve`) and queues it to
  the new address, with a notice to the current one. A second request voids the first link.
- An address that another account holds is refused as registration refuses it (409
  ``email_taken``, nothing more): an unverified account past ``UNVERIFIED_ACCOUNT_TTL`` holds
  it no longer (:mod:`.ownership`). Each new address has a budget of confirmation mails
  (:mod:`..mail.budgets`); past it the answer is the same 202 and nothing is sent.
- Confirming spends the link, checks the address is still free (an account may have taken it
  meanwhile: 409 ``email_taken``; the unique index on ``lower(email)`` settles two confirms at
  once), switches the address (verified: the link proved the mailbox), voids every other
  outstanding link (a reset link mailed to the old address must not work afterwards), revokes
  the other sessions and tells the old address.
"""

from __future__ import annotations

import contextlib
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..audit import Event
from ..errors import AccountDisabled, EmailTaken, InvalidLinkToken, ValidationFailed
from ..extensions import db
from ..mail import budgets, links, outbox
from ..models import User, UserSession
from ..models.base import utcnow
from ..utils.addresses import email_key
from . import ownership, reauth, revocation, users

BUDGET_KIND = "email_change"


def masked(email: str) -> str:
    """``a***@example.com``: enough for the owner to recognise, little for a reader."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def _holder_refuses(user: User, new_email: str) -> None:
    """:raises EmailTaken: another account holds ``new_email`` (an expired unverified one
    does not: registration would take it over, and so does the confirmation)."""
    holder = users.find_user_by_email(new_email)
    if holder is not None and holder.id != user.id and not ownership.is_expired(holder):
        db.session.rollback()
        raise EmailTaken()


def request_email_change(user_id: str, new_email: str, password: str | None) -> None:
    """Queue the confirmation link to ``new_email`` and a notice to the current address.

    :raises ValidationFailed: it is the account's address already.
    :raises EmailTaken: another account holds it.
    :raises AuthenticationFailed, RateLimited: see :func:`.reauth.confirm_user`.
    :raises TokenInvalid, AccountDisabled: see :func:`.users.get_active_user`.
    """
    user = users.get_active_user(user_id)
    # the fresh sign-in already passed the second factor; the API asks for no code here
    reauth.confirm_user(
        user, password=password, code=None, action="change_email", second_factor=False
    )
    if email_key(new_email) == email_key(user.email):
        db.session.rollback()
        raise ValidationFailed(details={"new_email": ["This is the account's address already."]})
    _holder_refuses(user, new_email)
    if not budgets.spend(BUDGET_KIND, new_email):
        db.session.rollback()
        audit.record(Event.EMAIL_BUDGET_SPENT, kind=BUDGET_KIND)
        return
    token_id = links.reserve(user.id, links.CHANGE_EMAIL, new_email=new_email)
    outbox.add(outbox.EMAIL_CHANGE, token_id=str(token_id))
    _notice(user.id, user.email, new_email, stage="requested")
    audit.record(Event.EMAIL_CHANGE_REQUESTED, user_id=user.id, in_transaction=True)
    db.session.commit()


def _notice(user_id: uuid.UUID, to: str, new_email: str, *, stage: str) -> None:
    """To ``to``, the address the account has before the change."""
    outbox.add(
        outbox.EMAIL_CHANGE_NOTICE,
        user_id=str(user_id),
        to=to,
        new_email=masked(new_email),
        stage=stage,
        when=audit.now_text(),
    )


def confirm_email_change(token: str, *, keep_session: uuid.UUID | None = None) -> User:
    """Spend the link and give the account its new address; every session but
    ``keep_session`` (the caller's own, if it sent a valid access token) is revoked.

    :raises InvalidLinkToken: unknown, used, voided or expired link.
    :raises AccountDisabled: the account was disabled meanwhile.
    :raises EmailTaken: another account took the address meanwhile (the link stays spent).
    """
    user_id, new_email = links.consume_bound(token, links.CHANGE_EMAIL)
    user = db.session.execute(
        select(User).where(User.id == user_id).with_for_update()
    ).scalar_one_or_none()
    if user is None:
        raise InvalidLinkToken()
    if not user.is_active:
        db.session.rollback()
        raise AccountDisabled()
    holder = users.find_user_by_email(new_email)
    if holder is not None and holder.id != user.id and not ownership.take_over_expired(holder):
        _spend_refused(token)
        raise EmailTaken()
    _notice(user.id, user.email, new_email, stage="changed")
    user.email = new_email
    user.email_verified_at = user.email_verified_at or utcnow()
    try:
        db.session.flush()  # the unique index on lower(email) speaks here
    except IntegrityError:  # a concurrent registration or confirmation won the address
        _spend_refused(token)
        raise EmailTaken() from None
    ownership.void_links(user.id)
    others = [UserSession.user_id == user.id, UserSession.revoked_at.is_(None)]
    if keep_session is not None:
        others.append(UserSession.id != keep_session)
    sessions = db.session.execute(select(UserSession).where(*others)).scalars()
    sids = revocation.record_session_revocation(sessions, "email_changed")
    audit.record_per_session(Event.SESSION_REVOKED, sids, user_id=user.id, reason="email_changed")
    audit.record(Event.EMAIL_CHANGED, user_id=user.id, in_transaction=True)
    db.session.commit()
    revocation.publish(sids=[*sids, *ownership.pending_revocations()])
    return user


def _spend_refused(token: str) -> None:
    """Spend a link whose address turned out taken, so it cannot be retried into a race."""
    db.session.rollback()
    with contextlib.suppress(InvalidLinkToken):
        links.consume_bound(token, links.CHANGE_EMAIL)
    db.session.commit()
