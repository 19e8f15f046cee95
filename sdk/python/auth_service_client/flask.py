"""Flask integration: ``TokenAuth`` and its ``require_auth`` decorator.

>>> auth = TokenAuth(app)                       # AUTH_ISSUER, AUTH_AUDIENCE from app.config
>>> @app.get("/orders")
... @auth.require_auth(scopes=["orders:read"])
... def orders():
...     return {"for": g.auth.subject}
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from flask import Flask, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from ._authz import AuthFailure, authorize
from .verifier import Verifier

EXTENSION_KEY = "auth_service_client"

P = ParamSpec("P")
R = TypeVar("R")


class TokenAuth:
    """Guards Flask views with access tokens of the auth service.

    ``TokenAuth(app, verifier)`` or ``TokenAuth(verifier=...)`` then ``init_app(app)``. Without
    a verifier, ``init_app`` builds one from ``AUTH_ISSUER`` and ``AUTH_AUDIENCE`` (and the
    optional ``AUTH_LEEWAY``) in ``app.config``.
    """

    def __init__(self, app: Flask | None = None, verifier: Verifier | None = None) -> None:
        self.verifier = verifier
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Attach to ``app``; the verifier is kept in ``app.extensions["auth_service_client"]``."""
        verifier = self.verifier
        if verifier is None:
            issuer, audience = app.config.get("AUTH_ISSUER"), app.config.get("AUTH_AUDIENCE")
            if not issuer or not audience:
                raise RuntimeError("TokenAuth needs a verifier or AUTH_ISSUER and AUTH_AUDIENCE")
            verifier = Verifier(issuer, audience, leeway=app.config.get("AUTH_LEEWAY", 30))
        app.extensions[EXTENSION_KEY] = verifier

    def require_auth(
        self, roles: Iterable[str] = (), scopes: Iterable[str] = (), fresh: bool = False
    ) -> Callable[[Callable[P, R]], Callable[P, R | ResponseReturnValue]]:
        """Decorate a view: a valid access token with every role and scope listed is needed.

        The claims are on ``flask.g.auth``. Missing token: 401 ``WWW-Authenticate: Bearer``;
        invalid or expired: 401 ``error="invalid_token"``; a role or scope missing: 403
        ``error="insufficient_scope"``; ``fresh`` and the token is not: 401 ``invalid_token``;
        issuer out of reach: 503 with ``Retry-After``. Bodies are
        ``{"error": ..., "error_description": ...}``.
        """
        roles, scopes = tuple(roles), tuple(scopes)

        def decorator(view: Callable[P, R]) -> Callable[P, R | ResponseReturnValue]:
            @functools.wraps(view)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | ResponseReturnValue:
                try:
                    g.auth = authorize(
                        self._verifier(),
                        request.headers.get("Authorization"),
                        roles=roles,
                        scopes=scopes,
                        fresh=fresh,
                    )
                except AuthFailure as failure:
                    return failure_response(failure)
                return view(*args, **kwargs)

            return wrapper

        return decorator

    def _verifier(self) -> Verifier:
        verifier: Verifier | None = current_app.extensions.get(EXTENSION_KEY, self.verifier)
        if verifier is None:
            raise RuntimeError("TokenAuth is not initialised on this app (call init_app)")
        return verifier


def failure_response(failure: AuthFailure) -> ResponseReturnValue:
    """The JSON response for a refused request."""
    response = jsonify(failure.body())
    response.status_code = failure.status
    response.headers.update(failure.headers)
    response.headers["Cache-Control"] = "no-store"
    return response
