"""One error hierarchy and one set of handlers: every failure leaves as the same JSON envelope.

``{"error": {"code", "message", "details"}, "request_id"}``; ``code`` is the stable string
clients branch on (API.md's list), ``message`` is for people.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, has_request_context, jsonify, request
from marshmallow import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as SQLATimeoutError
from werkzeug.exceptions import HTTPException

from .extensions import db
from .middleware.request_context import current_request_id

logger = logging.getLogger(__name__)


class AppError(Exception):
    status_code = 500
    code = "internal_error"
    message = "An unexpected error occurred."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or {}
        self.headers = headers or {}


class BadRequest(AppError):
    status_code, code, message = 400, "bad_request", "The request could not be understood."


class InvalidLinkToken(AppError):
    status_code, code, message = (
        400,
        "invalid_token",
        "This link or code is invalid or has expired.",
    )


class ValidationFailed(AppError):
    status_code, code, message = 422, "validation_error", "The request body is invalid."


class WeakPassword(AppError):
    status_code, code, message = 422, "weak_password", "This password is too weak."


class AuthenticationFailed(AppError):
    status_code, code, message = 401, "invalid_credentials", "Email or password is incorrect."


class AuthorizationRequired(AuthenticationFailed):
    code, message = "authorization_required", "An access token is required."


class TokenInvalid(AuthenticationFailed):
    code, message = "token_invalid", "The token is invalid."


class TokenExpired(AuthenticationFailed):
    code, message = "token_expired", "The token has expired."


class TokenRevoked(AuthenticationFailed):
    code, message = "token_revoked", "The token has been revoked."


class FreshTokenRequired(AuthenticationFailed):
    code, message = "fresh_token_required", "A fresh sign-in is required."


class InvalidMfaCode(AuthenticationFailed):
    code, message = "invalid_mfa_code", "The verification code is invalid."


class PermissionDenied(AppError):
    status_code, code, message = 403, "forbidden", "You are not allowed to do this."


class EmailNotVerified(PermissionDenied):
    code, message = "email_not_verified", "Verify your email address before signing in."


class AccountDisabled(PermissionDenied):
    code, message = "account_disabled", "This account is disabled."


class NotFound(AppError):
    status_code, code, message = 404, "not_found", "Not found."


class Conflict(AppError):
    status_code, code, message = 409, "conflict", "The request conflicts with the current state."


class EmailTaken(Conflict):
    code, message = "email_taken", "An account with this email already exists."


class OAuthLinkRefused(Conflict):
    """An OAuth identity's email matches a local account, but one side is unverified."""

    code, message = (
        "account_exists_unverified",
        "An account with this email already exists. Sign in to it, then link this provider.",
    )


class OAuthAlreadyLinked(Conflict):
    code, message = "oauth_already_linked", "This provider account is linked to another user."


class LastSignInMethod(Conflict):
    code, message = (
        "last_sign_in_method",
        "This is your only way to sign in: set a password or link another provider first.",
    )


class OAuthEmailUnavailable(PermissionDenied):
    code, message = (
        "oauth_email_unverified",
        "The provider did not share a verified email address.",
    )


class RateLimited(AppError):
    status_code, code, message = 429, "rate_limited", "Too many requests. Try again later."


class UpstreamError(AppError):
    status_code, code, message = 502, "upstream_error", "An upstream provider failed."


class ServiceUnavailable(AppError):
    status_code, code, message = (
        503,
        "service_unavailable",
        "The service is temporarily unavailable.",
    )


class HashingBusy(ServiceUnavailable):
    """No password-hashing thread of this process became free within ``ARGON2_QUEUE_TIMEOUT``:
    too many sign-ins at once. The password was not checked; the client may retry."""

    message = "Too many password checks at once. Try again shortly."


#: The service endpoints speak OAuth 2.0: their errors (ours too: 429, 503, 413) are
#: ``{"error", "error_description"}``; Authlib shapes the protocol's own.
OAUTH2_PREFIX = "/oauth2/"

# werkzeug's HTTP errors mapped onto our codes (anything else falls back to its status class).
HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("authorization_required", "Authentication is required."),
    403: ("forbidden", "You are not allowed to do this."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as application/json."),
    429: ("rate_limited", "Too many requests. Try again later."),
    503: ("service_unavailable", "The service is temporarily unavailable."),
}


def error_envelope(
    code: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"error": {...}, "request_id": ...}``: the body of every error response."""
    return {
        "error": {"code": code, "message": message, "details": details or {}},
        "request_id": current_request_id() if has_request_context() else None,
    }


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The envelope every error leaves in; on ``/oauth2`` the OAuth 2.0 shape (RFC 6749 §5.2)."""
    if has_request_context() and request.path.startswith(OAUTH2_PREFIX):
        response = jsonify({"error": code, "error_description": message})
    else:
        response = jsonify(error_envelope(code, message, details))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if has_request_context() and headers and "Retry-After" in headers:
        # Flask-Limiter, after us, stretches any Retry-After to its own window's reset (an
        # hour for /register): middleware/rate_limit.py puts this one back
        g.retry_after = headers["Retry-After"]
    return response


def handle_app_error(error: AppError) -> Response:
    if isinstance(error, ServiceUnavailable):
        # overload or an outage the client can wait out (Retry-After), not a fault of ours
        logger.warning("request refused", extra={"error_code": error.code})
    elif error.status_code >= 500:
        logger.error("request failed", extra={"error_code": error.code})
    return error_response(
        error.status_code, error.code, error.message, error.details, error.headers
    )


def handle_validation_error(error: ValidationError) -> Response:
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return error_response(422, "validation_error", "The request body is invalid.", messages)


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    code, message = HTTP_CODES.get(
        status, ("bad_request" if status < 500 else "internal_error", "")
    )
    headers = {}
    if error.response is not None:  # e.g. Flask-Limiter's 429 carries Retry-After
        headers = {
            k: v
            for k, v in error.response.headers.items()
            if k.lower().startswith(("retry-", "x-"))
        }
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return error_response(status, code, message or error.description or "", headers=headers)


#: Seconds a client is told to wait when the database cannot be reached or is saturated.
DATABASE_RETRY_AFTER = "2"


def handle_database_unavailable(error: SQLAlchemyError) -> Response:
    """503 with ``Retry-After`` when PostgreSQL is down, drops the connection, or the pool has
    no connection to give within ``DB_POOL_TIMEOUT``: a state the client can wait out, not a bug.

    Only the error's type is logged: SQLAlchemy's message carries the SQL and its parameters.
    """
    cause = getattr(error, "orig", None) or error
    logger.warning("database unavailable", extra={"error_type": type(cause).__name__})
    try:
        db.session.rollback()
    except SQLAlchemyError:
        logger.warning("rollback after a database error failed")
    return error_response(
        503,
        ServiceUnavailable.code,
        ServiceUnavailable.message,
        headers={"Retry-After": DATABASE_RETRY_AFTER},
    )


def handle_unexpected(error: Exception) -> Response:
    # Never leak the cause: the trace goes to the log with the request id, the client gets a code.
    logger.exception("unhandled exception", extra={"error_type": type(error).__name__})
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - a broken connection must not mask the original 500
        logger.warning("rollback after unhandled exception failed")
    return error_response(500, "internal_error", "An unexpected error occurred.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    # The pool's TimeoutError, and the DBAPI's errors for a lost or refused connection
    for database_error in (SQLATimeoutError, OperationalError, InterfaceError):
        app.register_error_handler(database_error, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
