"""Signing up and signing in with a password: the rules of the ``/api/v1/auth`` blueprint."""

from __future__ import annotations

import contextlib
import uuid

from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from .. import audit
from ..audit import Event
from ..errors import (
    AccountDisabled,
    AuthenticationFailed,
    EmailNotVerified,
    EmailTaken,
    HashingBusy,
)
from ..extensions import db
from ..identity import login_budget, ownership, revocation, throttle
from ..identity.hashing import (
    burn_password_check,
    ensure_hash_capacity,
    hash_password,
    imitate_password_check,
    needs_rehash,
    verify_password,
)
from ..identity.passwords import normalize_password, validate_new_password
from ..identity.sessions import ClientInfo
from ..identity.signin import SignInResult, sign_in
from ..identity.users import find_user_by_email
from ..mail import outbox
from ..models import User


def register_user(email: str, password: str, name: str | None) -> User:
    """Create an account with an unverified email and queue its verification link.

    :raises WeakPassword: the password fails the policy.
    :raises EmailTaken: the email exists already, in any letter case.
    """
    normalized = validate_new_password(password, email)
    existing = find_user_by_email(email)
    # An unverified account past UNVERIFIED_ACCOUNT_TTL holds the address no longer.
    if existing is not None and not ownership.take_over_expired(existing):
        db.session.rollback()
        raise EmailTaken()
    user = User(
        id=uuid.uuid4(),
        email=email,
        name=name,
        password_hash=hash_password(normalized),
        roles=["user"],
    )
    db.session.add(user)
    outbox.add(outbox.VERIFY_EMAIL, user_id=str(user.id))  # committed with the user
    try:
        db.session.flush()  # the unique index speaks here, before the event is written
        audit.record(Event.USER_REGISTERED, user_id=user.id, in_transaction=True)
        db.session.commit()
    except IntegrityError:  # a concurrent registration won the unique index
        db.session.rollback()
        raise EmailTaken() from None
    revocation.publish(sids=ownership.pending_revocations())
    return user


def authenticate(email: str, password: str) -> User:
    """The user whose password this is.

    Unknown email, wrong password and an account without a password answer alike and cost the
    same argon2 verification, so the answer reveals nothing about which accounts exist. Past
    the service-wide budget of such dummy verifications (:mod:`.login_budget`), an address
    without a password takes as long as a verification instead, computing none.

    :raises AuthenticationFailed: for all three, and for an expired unverified account
        (see :mod:`.ownership`).
    :raises RateLimited: the account is in a brute-force wait (see :mod:`.throttle`).
    :raises HashingBusy: no hash thread was free to check the password (503, ``Retry-After``;
        the attempt is not counted).
    :raises AccountDisabled: only after a correct password.
    :raises EmailNotVerified: when ``REQUIRE_EMAIL_VERIFICATION`` is on and the email is not.
    """
    ensure_hash_capacity()  # under a flood, refused before any database or Redis work
    throttle.reserve(email)  # counted as a failure until the password proves right
    candidate = normalize_password(password)
    # with its 2FA row: sign_in() asks for it next, and one query costs less than two
    user = find_user_by_email(email, joinedload(User.two_factor))
    usable = user is not None and user.password_hash is not None and not ownership.is_expired(user)
    dummy_allowed = login_budget.spend(unknown=not usable)  # same round trip for both
    with throttle.returned_if_unchecked(email):
        if user is None or user.password_hash is None or not usable:
            # past the service-wide budget: as long as a verification, computing none
            (burn_password_check if dummy_allowed else imitate_password_check)(candidate)
            audit.record(Event.LOGIN_FAILED, reason="invalid_credentials")
            raise AuthenticationFailed()
        if not verify_password(user.password_hash, candidate):
            audit.record(Event.LOGIN_FAILED, user_id=user.id, reason="invalid_credentials")
            raise AuthenticationFailed()
    if user.two_factor_enabled:  # with 2FA the count clears only after the second factor
        throttle.release(email)
    else:
        throttle.succeeded(email)
    if not user.is_active:
        raise AccountDisabled()
    if current_app.config["REQUIRE_EMAIL_VERIFICATION"] and not user.email_verified:
        raise EmailNotVerified()
    if needs_rehash(user.password_hash):
        # an upgrade, not a condition of signing in: without a free hash thread, next time
        with contextlib.suppress(HashingBusy):
            user.password_hash = hash_password(candidate)
    return user


def login(email: str, password: str, client: ClientInfo) -> SignInResult:
    """Check the password, then finish the sign-in (see :func:`sign_in`).

    :raises AuthenticationFailed, AccountDisabled, EmailNotVerified: see :func:`authenticate`.
    """
    user = authenticate(email, password)
    return sign_in(user, client, amr=["pwd"])
