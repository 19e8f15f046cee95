"""The ``admin`` blueprint object and the one check in front of every route of it.

The check is a ``before_request`` of the blueprint rather than a decorator on each view, so
that no admin route can be added without it. Every call needs a valid access token with the
``admin`` role (else 403 ``forbidden``, whatever else is wrong with the request); a change
(any method but GET) also needs a fresh token (401 ``fresh_token_required``) and, when
``ADMIN_REQUIRE_2FA`` is on, a second factor in the token's ``amr`` (403 ``forbidden``).

The token's ``roles`` can be trusted: losing a role revokes every session of the user at once
(:func:`..identity.accounts.update_user`), so a token naming a role it lost is revoked.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ..errors import FreshTokenRequired, PermissionDenied
from ..identity.accounts import ADMIN_ROLE, SECOND_FACTORS
from ..web.auth import EXEMPT_METHODS, verify_request

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")

READ_METHODS = frozenset({"GET", "HEAD"})


@bp.before_request
def _admins_only() -> None:
    if request.method in EXEMPT_METHODS:
        return
    claims = verify_request()
    if ADMIN_ROLE not in (claims.get("roles") or []):
        raise PermissionDenied("This needs the admin role.")
    if request.method in READ_METHODS:
        return
    if claims.get("fresh") is not True:
        raise FreshTokenRequired("A change needs a fresh sign-in (not a refreshed token).")
    if current_app.config["ADMIN_REQUIRE_2FA"] and not SECOND_FACTORS & set(
        claims.get("amr") or []
    ):
        raise PermissionDenied(
            "A change needs a sign-in with a second factor: turn on two-factor authentication "
            "and sign in again.",
            details={"reason": "second_factor_required"},
        )
