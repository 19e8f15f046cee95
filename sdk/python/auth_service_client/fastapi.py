"""FastAPI integration: ``RequireAuth`` as a dependency.

>>> require_reader = RequireAuth(verifier, scopes=["orders:read"])
>>> @app.get("/orders")
... def orders(claims: Claims = Depends(require_reader)):
...     return {"for": claims.subject}

Refusals are :class:`AuthHTTPException` (an ``HTTPException``) with the same statuses and
``WWW-Authenticate``/``Retry-After`` headers as the Flask decorator. FastAPI's default handler
puts the ``{"error", "error_description"}`` object under ``detail``; call
:func:`install_error_handler` to send it as the whole body instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from ._authz import AuthFailure, authorize
from .claims import Claims
from .verifier import Verifier


class AuthHTTPException(HTTPException):
    """A refused request; ``detail`` is ``{"error": ..., "error_description": ...}``."""

    def __init__(self, failure: AuthFailure) -> None:
        super().__init__(failure.status, detail=failure.body(), headers=failure.headers)
        self.failure = failure


class RequireAuth:
    """A dependency returning the verified :class:`Claims` of the request's bearer token.

    Every role and scope listed is required; ``fresh=True`` requires a fresh token. It is a plain
    (sync) callable, so FastAPI runs it in its thread pool: a JWKS fetch never blocks the loop.
    """

    def __init__(
        self,
        verifier: Verifier,
        roles: Iterable[str] = (),
        scopes: Iterable[str] = (),
        fresh: bool = False,
    ) -> None:
        self.verifier = verifier
        self.roles = tuple(roles)
        self.scopes = tuple(scopes)
        self.fresh = fresh

    def __call__(self, request: Request) -> Claims:
        try:
            claims = authorize(
                self.verifier,
                request.headers.get("Authorization"),
                roles=self.roles,
                scopes=self.scopes,
                fresh=self.fresh,
            )
        except AuthFailure as failure:
            raise AuthHTTPException(failure) from failure
        request.state.auth = claims
        return claims


def install_error_handler(app: FastAPI) -> None:
    """Answer :class:`AuthHTTPException` with the bare OAuth error object as the body."""

    async def handler(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, AuthHTTPException):  # pragma: no cover - registered for it only
            raise exc
        headers = {**exc.failure.headers, "Cache-Control": "no-store"}
        return JSONResponse(exc.failure.body(), status_code=exc.status_code, headers=headers)

    app.add_exception_handler(AuthHTTPException, handler)
