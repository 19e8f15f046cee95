"""The errors this package raises.

Token verification raises a :class:`VerificationError`; the subclass tells the caller what to
answer: :class:`TokenExpired`, :class:`InvalidToken` and :class:`TokenRevoked` are the caller's
401, :class:`IssuerUnavailable` is a 503 (the token may well be good, we could not check it).
"""

from __future__ import annotations


class VerificationError(Exception):
    """A token could not be accepted.

    ``error`` is the RFC 6750 error code a resource server sends back, ``description`` a short
    human-readable reason (safe to show the client: it never contains the token).
    """

    error: str = "invalid_token"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidToken(VerificationError):
    """Malformed, badly signed, for another issuer or audience, wrong ``typ``, missing claims."""


class TokenExpired(InvalidToken):
    """The token's ``exp`` has passed (beyond the leeway)."""


class TokenRevoked(InvalidToken):
    """The issuer's introspection endpoint says the token is no longer active."""


class IssuerUnavailable(VerificationError):
    """Discovery, the JWKS or introspection could not be reached or made no sense.

    Not the client's fault: answer 503 (``retry_after`` seconds is a fair ``Retry-After``).
    """

    error = "temporarily_unavailable"

    def __init__(self, description: str, *, retry_after: int = 30) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class ClientCredentialsError(Exception):
    """The token endpoint refused or failed a client-credentials grant.

    ``error`` is the RFC 6749 §5.2 code (``invalid_client``, ``invalid_scope``, ...) or
    ``temporarily_unavailable`` when the endpoint could not be reached or answered no OAuth
    error; ``status`` is the HTTP status (``None`` when there was no answer).
    """

    def __init__(
        self, error: str, error_description: str | None = None, *, status: int | None = None
    ) -> None:
        message = error if not error_description else f"{error}: {error_description}"
        super().__init__(message)
        self.error = error
        self.error_description = error_description
        self.status = status
