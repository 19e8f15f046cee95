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

from marshmallow import Schema, fields
from werkzeug.routing import Rule

from .schemas import MfaChallengeSchema, TokenPairSchema


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
    auth: str | None = None  # "bearer": an access token; "refresh": a refresh token (optional)
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


BEARER, REFRESH = "bearer", "refresh"
SIGN_IN_RESULT = {"oneOf": [TokenPairSchema, MfaChallengeSchema]}


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
        return {
            "required": False,
            "content": {"application/x-www-form-urlencoded": {"schema": op.form}},
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
    return []


def operation(endpoint: str, method: str, rule: Rule, op: Op, *, several: bool) -> dict[str, Any]:
    """The OpenAPI operation object of ``op`` (schemas still as classes, for apispec)."""
    path = openapi_path(rule)
    responses: dict[str, Any] = {str(op.status): _success_response(path, op)}
    for status, spec in op.other_responses.items():
        responses[str(status)] = _other_response(path, op, spec)
    for status, codes in error_statuses(path, op).items():
        responses[str(status)] = _error_response(status, codes)
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
