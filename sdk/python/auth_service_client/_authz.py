"""What the Flask and FastAPI guards share: reading the bearer token, deciding, the answers."""

from __future__ import annotations

from collections.abc import Iterable

from .claims import Claims
from .errors import IssuerUnavailable, VerificationError
from .verifier import Verifier


class AuthFailure(Exception):
    """A request the guard refuses: the status, RFC 6750 headers and ``{"error", ...}`` body."""

    def __init__(
        self,
        status: int,
        error: str | None,
        description: str | None,
        *,
        scope: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(description or error or "unauthorized")
        self.status = status
        self.error = error
        self.description = description
        self.headers: dict[str, str] = {}
        if status in (401, 403):
            self.headers["WWW-Authenticate"] = _challenge(error, description, scope)
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)

    def body(self) -> dict[str, str]:
        """The JSON body: ``{"error": ..., "error_description": ...}``."""
        return {
            "error": self.error or "unauthorized",
            "error_description": self.description or "an access token is required",
        }


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _challenge(error: str | None, description: str | None, scope: str | None) -> str:
    """``Bearer`` alone for a missing token (RFC 6750 §3.1), with error attributes otherwise."""
    if error is None:
        return "Bearer"
    params = [f"error={_quote(error)}"]
    if description:
        params.append(f"error_description={_quote(description)}")
    if scope:
        params.append(f"scope={_quote(scope)}")
    return "Bearer " + ", ".join(params)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, None when there is none."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def authorize(
    verifier: Verifier,
    authorization: str | None,
    *,
    roles: Iterable[str] = (),
    scopes: Iterable[str] = (),
    fresh: bool = False,
) -> Claims:
    """Verify the request's bearer token and check it holds every role and scope asked for."""
    token = bearer_token(authorization)
    if token is None:
        raise AuthFailure(401, None, None)
    try:
        claims = verifier.verify(token)
    except IssuerUnavailable as exc:
        raise AuthFailure(
            503,
            "temporarily_unavailable",
            "the token issuer cannot be reached; try again later",
            retry_after=exc.retry_after,
        ) from exc
    except VerificationError as exc:
        raise AuthFailure(401, "invalid_token", exc.description) from exc
    missing_roles = sorted(set(roles) - claims.roles)
    missing_scopes = sorted(set(scopes) - claims.scopes)
    if missing_roles or missing_scopes:
        wanted = [f"role {r}" for r in missing_roles] + [f"scope {s}" for s in missing_scopes]
        raise AuthFailure(
            403,
            "insufficient_scope",
            "the token lacks " + ", ".join(wanted),
            scope=" ".join(sorted(set(scopes))) or None,
        )
    if fresh and not claims.fresh:
        raise AuthFailure(401, "invalid_token", "a fresh token is required: sign in again")
    return claims
