"""What every blueprint's OpenAPI table is made of, and what one entry of it means.

Each blueprint describes its routes beside them (``auth/openapi.py``, ``two_factor/openapi.py``,
``oauth/openapi.py``, and ``service_openapi.py`` for the app-level routes): one :class:`Op` per
Flask endpoint, with the bodies the routes build by hand as small schemas nesting the real ones.
This module holds the shared pieces (the error envelope, the examples several tables use) and
turns an :class:`Op` into an OpenAPI operation object (:func:`operation`); ``apidocs.py``
assembles the tables into ``/apispec.json``.

Which error statuses an operation lists follows from its entry: a JSON body adds
400/413/415/422, an access token 401, ``/api/`` 429 (every ``/api/`` route has at least the
default rate limit), and every operation 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from .schemas import EnrollmentRequiredSchema, MfaChallengeSchema, TokenPairSchema


@dataclass(frozen=True)
class Op:
    """What the schemas cannot say about one operation.

    ``response`` is a schema class, a schema object (``{"oneOf": [...]}``, ``{"type": "string"}``)
    or None for no body; ``errors`` adds error codes by status to those that follow from
    ``body``/``query``/``auth`` and the path (see the module docstring).
    """

    summary: str
    tag: str
    response: type[Schema] | dict[str, Any] | None
    status: int = 200
    description: str = ""
    body: type[Schema] | None = None
    body_required: bool = True
    form: type[Schema] | None = None
    query: type[Schema] | None = None
    #: "bearer": an access token; "refresh": a refresh token (optional); "client": a service
    #: client's credentials (HTTP Basic or form fields)
    auth: str | None = None
    errors: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    other_responses: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    headers: tuple[str, ...] = ()  # extra request headers: names of components/parameters
    media_type: str = "application/json"
    no_store: bool = True  # the success response carries Cache-Control: no-store
    #: Whether it answers 429 and the X-RateLimit-* headers (None: every /api/ route does).
    rate_limited: bool | None = None
    request_example: Any = None
    response_example: Any = None
    response_examples: Mapping[str, Any] | None = None
    #: Errors in OAuth 2.0's shape (RFC 6749 §5.2: ``error``, ``error_description``), not the
    #: envelope: the ``/oauth2`` endpoints.
    oauth_errors: bool = False


BEARER, REFRESH, CLIENT = "bearer", "refresh", "client"
SIGN_IN_RESULT = {"oneOf": [TokenPairSchema, MfaChallengeSchema, EnrollmentRequiredSchema]}


# --- bodies every blueprint answers ----------------------------------------------------------


class ErrorBodySchema(Schema):
    code = fields.String(
        required=True, metadata={"description": "Stable, snake_case: branch on this."}
    )
    message = fields.String(required=True, metadata={"description": "For people."})
    details = fields.Dict(
        required=True,
        metadata={"description": "Field errors for `validation_error`, else mostly empty."},
    )


class ErrorSchema(Schema):
    """The one shape of every error, from every layer."""

    error = fields.Nested(ErrorBodySchema, required=True)
    request_id = fields.String(
        required=True, metadata={"description": "Also in the `X-Request-ID` header."}
    )


class OAuthErrorSchema(Schema):
    """An OAuth 2.0 error (RFC 6749 §5.2), what the ``/oauth2`` endpoints answer."""

    error = fields.String(
        required=True, metadata={"description": "`invalid_client`, `invalid_scope`, ..."}
    )
    error_description = fields.String(metadata={"description": "For people."})


class MessageSchema(Schema):
    message = fields.String(required=True)


# --- examples several tables use (API.md) -----------------------------------------------------

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery staple"  # noqa: S105 - an example in the documentation
NEW_PASSWORD = "battery staple correct horse"  # noqa: S105
ACCESS_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiIuLi4ifQ.c2ln"  # noqa: S105
REFRESH_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6IkpXVCJ9.eyJ0eXBlIjoicmVmcmVzaCJ9.c2ln"  # noqa: S105
USER = {
    "id": "0b6f1c2e-5d7a-4f3e-9b1a-2c8d4e6f8a01",
    "email": EMAIL,
    "name": "Alice",
    "email_verified": True,
    "two_factor_enabled": False,
    "roles": ["user"],
    "created_at": "2026-12-01T10:00:00Z",
    "updated_at": "2026-12-01T10:00:00Z",
}
TOKEN_PAIR = {
    "access_token": ACCESS_TOKEN,
    "refresh_token": REFRESH_TOKEN,
    "token_type": "Bearer",
    "expires_in": 900,
}
MFA_CHALLENGE = {
    "mfa_required": True,
    "mfa_token": "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJtZmEifQ.c2ln",
    "methods": ["totp", "backup_code"],
}
SIGN_IN_EXAMPLES = {
    "tokens": {"summary": "Signed in", "value": TOKEN_PAIR},
    "mfa_required": {
        "summary": "Two-factor is on: call POST /api/v1/2fa/verify",
        "value": MFA_CHALLENGE,
    },
    "mfa_enrollment_required": {
        "summary": "A role of the user requires 2FA (REQUIRE_2FA_FOR_ROLES): enrol with "
        "POST /api/v1/2fa/setup and /enable using enrollment_token, then sign in again",
        "value": {
            "mfa_enrollment_required": True,
            "enrollment_token": "eyJhbGciOiJSUzI1NiJ9.eyJ0eXBlIjoiZW5yb2xsIn0.c2ln",
            "expires_in": 300,
        },
    },
}
VALIDATION_DETAILS = {"email": ["Not a valid email address."]}


# --- what follows from an entry -------------------------------------------------------------


def error_statuses(path: str, op: Op) -> dict[int, tuple[str, ...]]:
    """Every error status ``op`` can answer, with its error codes."""
    statuses: dict[int, list[str]] = {}

    def add(status: int, *codes: str) -> None:
        known = statuses.setdefault(status, [])
        known.extend(code for code in codes if code not in known)

    if op.body is not None or op.form is not None:
        add(400, "bad_request")
        add(413, "payload_too_large")
    if op.body is not None:
        add(415, "unsupported_media_type")
        add(422, "validation_error")
    if op.query is not None:
        add(422, "validation_error")
    if op.auth == BEARER:
        add(401, "authorization_required", "token_invalid", "token_expired", "token_revoked")
    for status, codes in op.errors.items():
        add(status, *codes)
    if is_rate_limited(path, op):
        add(429, "rate_limited")
    add(500, "internal_error")
    return {status: tuple(codes) for status, codes in sorted(statuses.items())}


def is_rate_limited(path: str, op: Op) -> bool:
    return path.startswith("/api/") if op.rate_limited is None else op.rate_limited


def _headers(*, no_store: bool, rate_limited: bool, retry_after: bool = False) -> dict[str, Any]:
    names = ["X-Request-ID"]
    if no_store:
        names.append("Cache-Control")
    if rate_limited:
        names += ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
    if retry_after:
        names.append("Retry-After")
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


#: Error responses that are the same wherever they occur: ``components/responses``.
SHARED_ERRORS: dict[tuple[int, tuple[str, ...]], str] = {
    (413, ("payload_too_large",)): "PayloadTooLarge",
    (415, ("unsupported_media_type",)): "UnsupportedMediaType",
    (429, ("rate_limited",)): "RateLimited",
    (500, ("internal_error",)): "InternalError",
}


def _error_response(status: int, codes: tuple[str, ...]) -> dict[str, Any]:
    shared = SHARED_ERRORS.get((status, codes))
    if shared is not None:
        return {"$ref": f"#/components/responses/{shared}"}
    return error_response_object(status, codes)


def error_response_object(status: int, codes: tuple[str, ...]) -> dict[str, Any]:
    examples = {code: {"$ref": f"#/components/examples/{code}"} for code in codes}
    return {
        "description": ", ".join(f"`{code}`" for code in codes),
        "headers": _headers(no_store=True, rate_limited=status == 429, retry_after=status == 429),
        "content": {"application/json": {"schema": ErrorSchema, "examples": examples}},
    }


def oauth_error_response(status: int, codes: tuple[str, ...]) -> dict[str, Any]:
    headers = _headers(no_store=True, rate_limited=status == 429, retry_after=status == 429)
    if status == 401:
        headers["WWW-Authenticate"] = {
            "description": '`Basic error="invalid_client"` (RFC 6749 §5.2).',
            "schema": {"type": "string"},
        }
    examples = {
        code: {"value": {"error": code, "error_description": OAUTH_ERROR_TEXTS.get(code, code)}}
        for code in codes
    }
    return {
        "description": ", ".join(f"`{code}`" for code in codes),
        "headers": headers,
        "content": {"application/json": {"schema": OAuthErrorSchema, "examples": examples}},
    }


#: What an OAuth error example says (the service's words where it has its own).
OAUTH_ERROR_TEXTS = {
    "invalid_client": "The client cannot authenticate with methods: "
    "['client_secret_basic', 'client_secret_post']",
    "invalid_request": "The token parameter is missing.",
    "invalid_scope": "The client may not ask for this scope.",
    "invalid_grant": "The token was issued to another client.",
    "unsupported_grant_type": "grant_type must be client_credentials.",
    "unsupported_token_type": "token_type_hint must be access_token or refresh_token.",
    "insufficient_scope": "The client needs the introspect scope to introspect tokens.",
    "bad_request": "The request could not be understood.",
    "payload_too_large": "The request body is too large.",
    "rate_limited": "Too many requests. Try again later.",
    "internal_error": "An unexpected error occurred.",
}


def _success_response(path: str, op: Op) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": op.summary,
        "headers": _headers(no_store=op.no_store, rate_limited=is_rate_limited(path, op)),
    }
    if op.response is not None:
        media: dict[str, Any] = {"schema": op.response}
        if op.response_example is not None:
            media["example"] = op.response_example
        if op.response_examples is not None:
            media["examples"] = dict(op.response_examples)
        response["content"] = {op.media_type: media}
    return response


def _other_response(path: str, op: Op, spec: Mapping[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": spec["description"],
        "headers": {
            **_headers(no_store=False, rate_limited=is_rate_limited(path, op)),
            **spec.get("headers", {}),
        },
    }
    if "schema" in spec:
        response["content"] = {"application/json": {"schema": spec["schema"]}}
    return response


def _request_body(op: Op) -> dict[str, Any] | None:
    if op.form is not None:
        form: dict[str, Any] = {"schema": op.form}
        if op.request_example is not None:
            form["example"] = op.request_example
        return {
            # the OAuth endpoints need their form; a provider's form_post callback may be empty
            "required": op.oauth_errors,
            "content": {"application/x-www-form-urlencoded": form},
        }
    if op.body is None:
        return None
    media: dict[str, Any] = {"schema": op.body}
    if op.request_example is not None:
        media["example"] = op.request_example
    return {"required": op.body_required, "content": {"application/json": media}}


def _security(op: Op) -> list[dict[str, list[str]]]:
    if op.auth == BEARER:
        return [{"bearerAuth": []}]
    if op.auth == REFRESH:
        return [{"refreshToken": []}, {}]  # or `refresh_token` in the body
    if op.auth == CLIENT:
        return [{"clientBasic": []}, {}]  # or client_id and client_secret in the form
    return []


def operation(endpoint: str, method: str, rule: Rule, op: Op, *, several: bool) -> dict[str, Any]:
    """The OpenAPI operation object of ``op`` (schemas still as classes, for apispec)."""
    path = openapi_path(rule)
    responses: dict[str, Any] = {str(op.status): _success_response(path, op)}
    for status, spec in op.other_responses.items():
        responses[str(status)] = _other_response(path, op, spec)
    for status, codes in error_statuses(path, op).items():
        responses[str(status)] = (
            oauth_error_response(status, codes)
            if op.oauth_errors
            else _error_response(status, codes)
        )
    parameters: list[Any] = [*op.headers, "RequestId"]
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    result: dict[str, Any] = {
        "tags": [op.tag],
        "summary": op.summary,
        "operationId": endpoint.replace(".", "_") + (f"_{method.lower()}" if several else ""),
        "parameters": parameters,
        "responses": responses,
        "security": _security(op),
    }
    if op.description:
        result["description"] = op.description
    body = _request_body(op)
    if body is not None:
        result["requestBody"] = body
    return result


def openapi_path(rule: Rule) -> str:
    """``/sessions/<session_id>`` -> ``/sessions/{session_id}``."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)


def add_components(spec: APISpec) -> None:
    """The security schemes, parameters and headers the operations refer to."""
    spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token (`access_token` of login, refresh, 2FA verify...).",
        },
    )
    spec.components.security_scheme(
        "refreshToken",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A refresh token; only `POST /api/v1/auth/refresh` takes it.",
        },
    )
    spec.components.security_scheme(
        "clientBasic",
        {
            "type": "http",
            "scheme": "basic",
            "description": "A service client's `client_id` and `client_secret` (HTTP Basic, "
            "RFC 6749 §2.3.1); or send them as the form fields `client_id` and `client_secret`.",
        },
    )
    spec.components.parameter(
        "RequestId",
        "header",
        {
            "name": "X-Request-ID",
            "required": False,
            "description": "Your correlation id, echoed back when it matches "
            "`^[A-Za-z0-9._:-]{1,128}$`; otherwise the service makes one.",
            "schema": {"type": "string"},
        },
    )
    spec.components.parameter(
        "IfNoneMatch",
        "header",
        {
            "name": "If-None-Match",
            "required": False,
            "description": "The `ETag` of a copy you hold.",
            "schema": {"type": "string"},
        },
    )
    text: dict[str, Any] = {"type": "string", "minLength": 1}
    number: dict[str, Any] = {"type": "integer"}
    headers: dict[str, tuple[str, bool, dict[str, Any]]] = {
        "X-Request-ID": ("The request id (also `request_id` in errors).", True, text),
        "Cache-Control": ("`no-store` on anything carrying tokens or user data.", True, text),
        "X-RateLimit-Limit": ("Requests allowed in the window.", False, number),
        "X-RateLimit-Remaining": ("Requests left in the window.", False, number),
        "X-RateLimit-Reset": ("When the window resets (Unix time).", False, number),
        "Retry-After": ("Seconds to wait.", True, number),
    }
    for name, (description, required, schema) in headers.items():
        spec.components.header(
            name, {"description": description, "required": required, "schema": dict(schema)}
        )
