"""The access-token check of every protected route: ``@require_token`` and its claims.

One path: the bearer token is verified by :func:`..identity.tokens.decode` (the key by
``kid``, one signature check, ``typ: at+jwt``), then checked against revocation
(:mod:`..identity.revocation`: Redis, the database when Redis cannot answer), then for
freshness when the route asks. Every refusal is an :class:`..errors.AppError`, so it leaves in
the one envelope (401 ``authorization_required``, ``token_invalid``, ``token_expired``,
``token_revoked``, ``fresh_token_required``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast, overload

from flask import g, request

from ..errors import AuthorizationRequired, FreshTokenRequired, TokenRevoked
from ..identity import revocation, tokens

P = ParamSpec("P")
R = TypeVar("R")
#: Methods that never carry credentials (CORS preflight).
EXEMPT_METHODS = frozenset({"OPTIONS"})


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None without one."""
    header = request.headers.get("Authorization", "").strip()
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def verify_request(*, fresh: bool = False, enrollment: bool = False) -> dict[str, Any]:
    """The claims of the request's valid, unrevoked access token (and fresh, if asked); with
    ``enrollment``, an enrollment token (``REQUIRE_2FA_FOR_ROLES``) will do as well.

    :raises AuthorizationRequired: no bearer token.
    :raises TokenInvalid, TokenExpired: see :func:`..identity.tokens.decode`.
    :raises TokenRevoked: its session or the token itself was revoked.
    :raises FreshTokenRequired: ``fresh`` and the token comes from a refresh, not a sign-in.
    """
    token = bearer_token()
    if token is None:
        raise AuthorizationRequired("An access token is required.")
    if enrollment and tokens.kind_of(token) == tokens.ENROLL:
        # short-lived, no session: what it may do is enrol, which the user must finish
        g.token_claims = claims = tokens.decode(token, expected_type=tokens.ENROLL)
        g.user_id = claims["sub"]
        return claims
    claims = tokens.decode(token, expected_type=tokens.ACCESS)
    g.user_id = claims.get("sub")
    if revocation.is_revoked(str(claims.get("jti", "")), str(claims.get("sid", ""))):
        raise TokenRevoked()
    if fresh and claims.get("fresh") is not True:
        raise FreshTokenRequired()
    g.token_claims = claims
    return claims


@overload
def require_token(view: Callable[P, R]) -> Callable[P, R]: ...


@overload
def require_token(
    *, fresh: bool = False, enrollment: bool = False
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def require_token(
    view: Callable[P, R] | None = None, *, fresh: bool = False, enrollment: bool = False
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a view that needs an access token (``fresh``: one from a sign-in;
    ``enrollment``: or an enrollment token, for the routes that enrol a second factor).

    Use bare (``@require_token``) or with ``fresh=True``; read the claims with
    :func:`current_claims`.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if request.method not in EXEMPT_METHODS:
                verify_request(fresh=fresh, enrollment=enrollment)
            return function(*args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def current_claims() -> dict[str, Any]:
    """The verified claims of this request's access token (inside a ``@require_token`` view)."""
    return cast("dict[str, Any]", g.token_claims)
