"""Asking the person at the keyboard to prove themselves again before a step that cannot be
undone or that hands the account elsewhere (deleting it, changing its address).

The routes that call this demand a fresh access token (one from a sign-in, not a refresh). On
top of it: the password when the account has one (an account without one has only the fresh
sign-in), and a second-factor code when 2FA is on. Wrong answers count toward the account's
brute-force throttle like a refused sign-in.

The second factor's codes are the ``two_factor`` blueprint's business; the kernel never imports
a blueprint, so that blueprint registers its check in ``app.extensions[SECOND_FACTOR]``
(:func:`register_second_factor`). Without it, an account with 2FA on is refused (fail closed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import current_app
from flask.sansio.app import App

from .. import audit
from ..audit import Event
from ..errors import AuthenticationFailed, ServiceUnavailable, ValidationFailed
from ..extensions import db
from ..models import User
from . import throttle
from .hashing import verify_password
from .passwords import normalize_password

SECOND_FACTOR = "second_factor_check"
#: (user id, email, code, action) -> None; raises InvalidMfaCode (and rolls back) on a wrong code.
SecondFactorCheck = Callable[[uuid.UUID, str, str, str], None]


def register_second_factor(app: App, check: SecondFactorCheck) -> None:
    app.extensions[SECOND_FACTOR] = check


def _missing(field: str) -> ValidationFailed:
    db.session.rollback()
    return ValidationFailed(details={field: ["Missing data for required field."]})


def confirm_user(
    user: User, *, password: str | None, code: str | None, action: str, second_factor: bool = True
) -> None:
    """Re-check ``user`` (whose fresh access token the route verified) before ``action``;
    ``second_factor``: ask for the 2FA code too when 2FA is on.

    :raises ValidationFailed: the account has a password (or 2FA) and none (no code) was sent.
    :raises AuthenticationFailed: wrong password, or a password for an account without one.
    :raises InvalidMfaCode: wrong or already used second-factor code.
    :raises RateLimited: the account is in a brute-force wait.
    """
    has_password = user.password_hash is not None
    if has_password and password is None:
        raise _missing("password")
    second_factor = second_factor and user.two_factor_enabled
    if second_factor and code is None:
        raise _missing("code")
    if not has_password and password is not None:
        db.session.rollback()
        raise AuthenticationFailed("The password is incorrect.")
    uid, email, password_hash = user.id, user.email, user.password_hash
    throttle.reserve(email)
    with throttle.returned_if_unchecked(email):
        if password_hash is not None and not verify_password(
            password_hash, normalize_password(password or "")
        ):
            db.session.rollback()
            audit.record(Event.REAUTHENTICATION_FAILED, user_id=uid, action=action)
            raise AuthenticationFailed("The password is incorrect.")
        if second_factor:
            check: SecondFactorCheck | None = current_app.extensions.get(SECOND_FACTOR)
            if check is None:
                db.session.rollback()
                raise ServiceUnavailable("Two-factor checks are unavailable.")
            check(uid, email, code or "", action)
    throttle.succeeded(email)
