"""The OpenAPI 3 document (``/apispec.json``) and Swagger UI (``/apidocs/``), served by flasgger.

One source of truth per fact:
- request and response bodies are the marshmallow schemas the routes use, turned into
  ``components/schemas`` by apispec's MarshmallowPlugin (the few bodies the routes build by hand,
  such as ``{"user": {...}}`` or the error envelope, are described by the small schemas below,
  which nest the real ones);
- what a schema cannot say (summary, tag, statuses, auth, examples) is :data:`OPERATIONS`, one
  entry per Flask endpoint;
- the paths are ``app.url_map``: a route missing from the table is reported by
  :func:`undocumented_endpoints` (logged at start-up, and a test fails), never silently dropped.

Every operation answers its errors in the envelope of ``errors.py``; which statuses it lists
follows from the table: a JSON body adds 400/413/415/422, an access token 401, ``/api/`` 429
(every ``/api/`` route has at least the default rate limit), and every operation 500.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flasgger import Swagger
from flask import Flask, Response, request
from jinja2 import BaseLoader, ChoiceLoader, DictLoader
from marshmallow import INCLUDE, Schema, fields, validate
from marshmallow.fields import Field
from werkzeug.routing import Rule
from werkzeug.wrappers import Response as BaseResponse

from .auth.schemas import (
    EmailOnlySchema,
    EventsQuerySchema,
    LinkTokenSchema,
    LoginSchema,
    LogoutSchema,
    MfaChallengeSchema,
    PasswordChangeSchema,
    PasswordResetSchema,
    RefreshSchema,
    RegisterSchema,
    RevokeSchema,
    SecurityEventSchema,
    SessionCursor,
    SessionSchema,
    SessionsQuerySchema,
    TokenPairSchema,
    UpdateMeSchema,
    UserSchema,
)
from .errors import HTTP_CODES, AppError
from .oauth.providers import REGISTRY as OAUTH_PROVIDERS
from .oauth.schemas import (
    AuthorizeQuerySchema,
    ExchangeSchema,
    LinkConfirmSchema,
    LinkedAccountSchema,
    LinkSchema,
    NativeTokenSchema,
    OAuthAccountSchema,
    ProviderSchema,
)
from .two_factor.schemas import (
    BackupCodesSchema,
    CodeSchema,
    DisableSchema,
    SetupQuerySchema,
    SetupSchema,
    StatusSchema,
    VerifySchema,
)
from .web.fields import Email, SafeString, UTCTime

logger = logging.getLogger(__name__)

OPENAPI_VERSION = "3.0.3"  # flasgger's Swagger UI (3.x) renders OpenAPI 3.0, not 3.1
SPEC_ROUTE = "/apispec.json"
#: Seconds a client or proxy may reuse the document without asking again.
SPEC_MAX_AGE = 300
DOCS_ROUTE = "/apidocs/"
TITLE = "Auth service API"
DESCRIPTION = """\
Accounts, sessions, asymmetric JWTs (verify them offline with `/.well-known/jwks.json`),
two-factor authentication and OAuth sign-in.

* JSON in, JSON out. A body that is not JSON gets 415, malformed JSON 400, a body over the
  size limit (64 KiB by default) 413, a body that breaks its schema 422.
* Every error has one shape: `{"error": {"code", "message", "details"}, "request_id"}`;
  branch on `code`, show `message`. Every response carries `X-Request-ID`.
* Operations marked with a lock need an access token: use **Authorize** with the
  `access_token` of `POST /api/v1/auth/login`.
* Every `/api/` operation is rate limited (`X-RateLimit-*` headers; a 429 adds `Retry-After`).
"""

SERVICE, ACCOUNT, TWO_FACTOR, OAUTH = "Service", "Account and session", "Two-factor", "OAuth"
TAGS = [
    {"name": SERVICE, "description": "Probes, metrics, key discovery and this documentation."},
    {"name": ACCOUNT, "description": "Registration, sign-in, tokens, sessions, email links."},
    {"name": TWO_FACTOR, "description": "TOTP and backup codes; the second sign-in step."},
    {"name": OAUTH, "description": "Sign in with Google, GitHub and Apple; linked accounts."},
]

#: Routes that are tooling, not API operations (with the reason they are left out).
NOT_OPERATIONS = {
    "static": "Flask's static folder; the service serves no files",
    "flasgger.static": "Swagger UI's own JavaScript and CSS",
    "flasgger.oauth_redirect": "Swagger UI's OAuth2 redirect page (unused: bearer tokens only)",
    "flasgger.<lambda>": "/apidocs/index.html, a redirect to /apidocs/",
}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


# --- bodies the routes build by hand (they nest the real schemas) ------------------------------


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


class LogoutAllResultSchema(Schema):
    message = fields.String(required=True)
    sessions_revoked = fields.Integer(required=True)


class UserResultSchema(Schema):
    user = fields.Nested(UserSchema, required=True)


class SessionListSchema(Schema):
    sessions = fields.List(fields.Nested(SessionSchema), required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Pass it as `?cursor=` for the next page; null on the last."},
    )


class SecurityEventPageSchema(Schema):
    events = fields.List(fields.Nested(SecurityEventSchema), required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class ProviderListSchema(Schema):
    providers = fields.List(fields.Nested(ProviderSchema), required=True)


class OAuthAccountListSchema(Schema):
    accounts = fields.List(fields.Nested(OAuthAccountSchema), required=True)


class AuthorizationUrlSchema(Schema):
    authorization_url = fields.String(required=True)


class OAuthCallbackSchema(Schema):
    """What the provider sends back (Apple posts it as a form); other fields are ignored."""

    class Meta:
        unknown = INCLUDE

    state = fields.String(metadata={"description": "The state this service sent to the provider."})
    code = fields.String()
    error = fields.String()
    id_token = fields.String(metadata={"description": "Apple (form_post)."})
    user = fields.String(metadata={"description": "Apple, first sign-in only: JSON with the name."})


class LiveSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


class DependencySchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["up", "down", "not_configured"]))
    latency_ms = fields.Float(metadata={"description": "When up."})
    error = fields.String(metadata={"description": "When down: `timeout` or an exception name."})


class DependenciesSchema(Schema):
    database = fields.Nested(DependencySchema, required=True)
    redis = fields.Nested(DependencySchema, required=True)
    broker = fields.Nested(DependencySchema, required=True)


class HealthSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "degraded", "down"]))
    checks = fields.Nested(DependenciesSchema, required=True)


class HealthDownSchema(HealthSchema):
    """The report (status ``down``) inside the error envelope (``service_unavailable``)."""

    error = fields.Nested(ErrorBodySchema, required=True)
    request_id = fields.String(
        required=True, metadata={"description": "Also in the `X-Request-ID` header."}
    )


class JwkSchema(Schema):
    """A public key (RFC 7517): RSA adds ``n`` and ``e``; EC and OKP ``crv``, ``x`` (``y``)."""

    class Meta:
        unknown = INCLUDE

    kty = fields.String(required=True)
    kid = fields.String(required=True)
    use = fields.String(required=True)
    alg = fields.String(required=True)


class JwksSchema(Schema):
    keys = fields.List(fields.Nested(JwkSchema), required=True)


class OpenIdConfigurationSchema(Schema):
    issuer = fields.String(required=True)
    jwks_uri = fields.String(required=True)
    id_token_signing_alg_values_supported = fields.List(fields.String(), required=True)
    token_endpoint = fields.String(required=True)
    revocation_endpoint = fields.String(required=True)
    userinfo_endpoint = fields.String(required=True)
    claims_supported = fields.List(fields.String(), required=True)


# --- examples (API.md) -------------------------------------------------------------------------

EMAIL = "alice@example.com"
PASSWORD = "correct horse battery staple"  # noqa: S105 - an example in the documentation
NEW_PASSWORD = "battery staple correct horse"  # noqa: S105
ACCESS_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiIuLi4ifQ.c2ln"  # noqa: S105
REFRESH_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6IkpXVCJ9.eyJ0eXBlIjoicmVmcmVzaCJ9.c2ln"  # noqa: S105
LINK_TOKEN = "q4Zt0fV3m9o2Yw8xK1pC6sH5uJ7nB0aR"  # noqa: S105
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
ACCEPTED = {"message": "If the address belongs to an account, an email is on its way."}
SESSION = {
    "id": "6a2f0d4c-1b3e-4c5d-8e9f-0a1b2c3d4e5f",
    "created_at": "2026-12-01T10:00:00Z",
    "last_used_at": "2026-12-01T10:05:00Z",
    "user_agent": "Mozilla/5.0",
    "ip": "203.0.113.7",
    "current": True,
}
BACKUP_CODES = {"backup_codes": [f"ABCD-EF{n:02d}" for n in range(10)]}
VALIDATION_DETAILS = {"email": ["Not a valid email address."]}


# --- the table --------------------------------------------------------------------------------


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
REDIRECT = {
    302: {
        "description": "Redirect (the target is in `Location`).",
        "headers": {"Location": {"schema": {"type": "string"}, "required": True}},
    }
}
AUTHORIZE_REDIRECT = {
    302: {
        "description": "Redirect to the provider (the target is in `Location`), setting the "
        "cookie that binds the sign-in to this browser.",
        "headers": {
            "Location": {"schema": {"type": "string"}, "required": True},
            "Set-Cookie": {
                "description": "`__Secure-oauth_binding` (`SameSite=Lax`; Apple: "
                "`__Secure-oauth_binding_post`, `SameSite=None`), `HttpOnly; Secure; "
                "Path=/api/v1/oauth/; Max-Age=` the state lifetime. A browser that already has "
                "one keeps its value.",
                "schema": {"type": "string"},
            },
        },
    }
}
#: Path parameters, by the name the routes give them.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "provider": {
        "description": "An OAuth provider; one that is not configured answers 404.",
        "schema": {"type": "string", "enum": list(OAUTH_PROVIDERS)},
    },
    "session_id": {"description": "A session id.", "schema": {"type": "string", "format": "uuid"}},
}

#: Flask endpoint -> its operation, or method -> operation where one view serves several methods.
OPERATIONS: dict[str, Op | dict[str, Op]] = {
    # Service
    "health.live": Op(
        "Liveness: the process serves",
        SERVICE,
        LiveSchema,
        response_example={"status": "ok"},
        no_store=False,
    ),
    "health.health": Op(
        "Readiness: database, Redis and broker",
        SERVICE,
        HealthSchema,
        description="Redis or the broker down is `degraded` (still 200); the database down is 503.",
        no_store=False,
        other_responses={
            503: {
                "description": "The database is unreachable: the report, in the error envelope "
                "(`service_unavailable`).",
                "schema": HealthDownSchema,
                "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
            }
        },
        response_example={
            "status": "ok",
            "checks": {
                "database": {"status": "up", "latency_ms": 1.2},
                "redis": {"status": "up", "latency_ms": 0.4},
                "broker": {"status": "not_configured"},
            },
        },
    ),
    "prometheus_metrics": Op(
        "Prometheus metrics",
        SERVICE,
        {"type": "string"},
        media_type="text/plain",
        description="Prometheus text format. With `METRICS_TOKEN` set, it needs "
        "`Authorization: Bearer <METRICS_TOKEN>` (not an access token).",
        errors={401: ("authorization_required",)},
        no_store=False,
        response_example="# TYPE auth_logins_total counter\n"
        'auth_logins_total{result="success"} 3.0\n',
    ),
    "flasgger.apispec": Op(
        "This OpenAPI document",
        SERVICE,
        {"type": "object"},
        description=f"Built once per process; cached for {SPEC_MAX_AGE // 60} minutes, with "
        "ETag. Rate limited per IP.",
        headers=("IfNoneMatch",),
        no_store=False,
        rate_limited=True,
        other_responses={304: {"description": "Not modified (`If-None-Match` matched)."}},
    ),
    "flasgger.apidocs": Op(
        "Swagger UI on this document",
        SERVICE,
        {"type": "string"},
        media_type="text/html",
        no_store=False,
    ),
    "wellknown.jwks": Op(
        "Public signing keys (JWKS, RFC 7517)",
        SERVICE,
        JwksSchema,
        description="Every key whose tokens may still be valid; cached for 5 minutes, with ETag.",
        headers=("IfNoneMatch",),
        no_store=False,
        other_responses={304: {"description": "Not modified (`If-None-Match` matched)."}},
        response_example={
            "keys": [
                {
                    "kty": "RSA",
                    "kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
                    "use": "sig",
                    "alg": "RS256",
                    "n": "0vx7agoebGcQSuu...",
                    "e": "AQAB",
                }
            ]
        },
    ),
    "wellknown.openid_configuration": Op(
        "Discovery metadata for other services",
        SERVICE,
        OpenIdConfigurationSchema,
        no_store=False,
        response_example={
            "issuer": "https://auth.example.com",
            "jwks_uri": "https://auth.example.com/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint": "https://auth.example.com/api/v1/auth/login",
            "revocation_endpoint": "https://auth.example.com/api/v1/auth/revoke",
            "userinfo_endpoint": "https://auth.example.com/api/v1/auth/me",
            "claims_supported": [
                "iss",
                "aud",
                "sub",
                "iat",
                "nbf",
                "exp",
                "jti",
                "type",
                "sid",
                "fresh",
                "email",
                "email_verified",
                "roles",
                "amr",
            ],
        },
    ),
    # Account and session
    "auth.register": Op(
        "Create an account",
        ACCOUNT,
        UserResultSchema,
        status=201,
        description="Sends a verification email.",
        body=RegisterSchema,
        errors={409: ("email_taken",), 422: ("weak_password",)},
        request_example={"email": EMAIL, "password": PASSWORD, "name": "Alice"},
        response_example={"user": {**USER, "email_verified": False}},
    ),
    "auth.login": Op(
        "Sign in with email and password",
        ACCOUNT,
        SIGN_IN_RESULT,
        description="A token pair, or an MFA challenge when two-factor is on. A wrong password "
        "and an unknown email answer the same. Repeated failures lock the account for a "
        "while (429).",
        body=LoginSchema,
        errors={401: ("invalid_credentials",), 403: ("account_disabled", "email_not_verified")},
        request_example={"email": EMAIL, "password": PASSWORD},
        response_examples=SIGN_IN_EXAMPLES,
    ),
    "auth.refresh": Op(
        "New token pair from a refresh token (rotation)",
        ACCOUNT,
        TokenPairSchema,
        description="The refresh token comes in the body or as `Authorization: Bearer`; it is "
        "spent. Presenting a spent one again revokes its session.",
        body=RefreshSchema,
        body_required=False,
        auth=REFRESH,
        errors={
            401: ("authorization_required", "token_invalid", "token_expired", "token_revoked"),
            403: ("account_disabled",),
        },
        request_example={"refresh_token": REFRESH_TOKEN},
        response_example=TOKEN_PAIR,
    ),
    "auth.logout": Op(
        "Sign out this session",
        ACCOUNT,
        MessageSchema,
        description="Revokes this session's tokens (and the session of `refresh_token`, if it is "
        "the user's).",
        body=LogoutSchema,
        body_required=False,
        auth=BEARER,
        request_example={"refresh_token": REFRESH_TOKEN},
        response_example={"message": "Signed out."},
    ),
    "auth.logout_all": Op(
        "Sign out every session",
        ACCOUNT,
        LogoutAllResultSchema,
        auth=BEARER,
        response_example={"message": "Signed out everywhere.", "sessions_revoked": 3},
    ),
    "auth.revoke": Op(
        "Revoke a token (RFC 7009)",
        ACCOUNT,
        MessageSchema,
        description="An access or refresh token of the same user; an unknown or foreign token "
        "also answers 200.",
        body=RevokeSchema,
        auth=BEARER,
        request_example={"token": REFRESH_TOKEN, "token_type_hint": "refresh_token"},
        response_example={"message": "Token revoked."},
    ),
    "auth.me": Op(
        "The signed-in user",
        ACCOUNT,
        UserResultSchema,
        auth=BEARER,
        errors={403: ("account_disabled",)},
        response_example={"user": USER},
    ),
    "auth.update_me": Op(
        "Change the profile",
        ACCOUNT,
        UserResultSchema,
        body=UpdateMeSchema,
        auth=BEARER,
        errors={403: ("account_disabled",)},
        request_example={"name": "Alice Liddell"},
        response_example={"user": {**USER, "name": "Alice Liddell"}},
    ),
    "auth.sessions": Op(
        "Open sessions",
        ACCOUNT,
        SessionListSchema,
        description="Most recently used first, `limit` per page (default 50, at most 200). "
        "`next_cursor` is null on the last page; otherwise pass it back as `cursor` for the "
        "next one. A cursor is opaque; a session signed in meanwhile never shifts a later page. "
        "An invalid cursor is 422.",
        query=SessionsQuerySchema,
        auth=BEARER,
        response_example={"sessions": [SESSION], "next_cursor": None},
    ),
    "auth.delete_session": Op(
        "Revoke one session",
        ACCOUNT,
        None,
        status=204,
        description="Another user's session, or an unknown id, is 404.",
        auth=BEARER,
        errors={404: ("not_found",)},
        no_store=False,
    ),
    "auth.verify_email": Op(
        "Verify the email address",
        ACCOUNT,
        UserResultSchema,
        description="Spends the token from the emailed link. POST only: mail scanners follow "
        "links, so no GET spends a token.",
        body=LinkTokenSchema,
        errors={400: ("invalid_token",), 403: ("account_disabled",)},
        request_example={"token": LINK_TOKEN},
        response_example={"user": USER},
    ),
    "auth.verify_email_resend": Op(
        "Send the verification email again",
        ACCOUNT,
        MessageSchema,
        status=202,
        description="202 whether or not the address exists.",
        body=EmailOnlySchema,
        request_example={"email": EMAIL},
        response_example=ACCEPTED,
    ),
    "auth.password_forgot": Op(
        "Email a password-reset link",
        ACCOUNT,
        MessageSchema,
        status=202,
        description="202 whether or not the address exists.",
        body=EmailOnlySchema,
        request_example={"email": EMAIL},
        response_example=ACCEPTED,
    ),
    "auth.password_reset": Op(
        "Set a new password with the emailed token",
        ACCOUNT,
        MessageSchema,
        description="Every session of the user is revoked.",
        body=PasswordResetSchema,
        errors={400: ("invalid_token",), 403: ("account_disabled",), 422: ("weak_password",)},
        request_example={"token": LINK_TOKEN, "password": NEW_PASSWORD},
        response_example={"message": "Password updated. Every session was signed out."},
    ),
    "auth.password_change": Op(
        "Change the password",
        ACCOUNT,
        TokenPairSchema,
        description="Answers a new token pair; every other session is revoked.",
        body=PasswordChangeSchema,
        auth=BEARER,
        errors={401: ("invalid_credentials",), 403: ("account_disabled",), 422: ("weak_password",)},
        request_example={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        response_example=TOKEN_PAIR,
    ),
    "auth.magic_link": Op(
        "Email a sign-in link",
        ACCOUNT,
        MessageSchema,
        status=202,
        description="202 whether or not the address exists.",
        body=EmailOnlySchema,
        request_example={"email": EMAIL},
        response_example=ACCEPTED,
    ),
    "auth.magic_link_verify": Op(
        "Sign in with the emailed link",
        ACCOUNT,
        SIGN_IN_RESULT,
        description="A token pair, or an MFA challenge as for login.",
        body=LinkTokenSchema,
        errors={400: ("invalid_token",), 403: ("account_disabled",)},
        request_example={"token": LINK_TOKEN},
        response_examples=SIGN_IN_EXAMPLES,
    ),
    "auth.security_events": Op(
        "The user's security events (audit log)",
        ACCOUNT,
        SecurityEventPageSchema,
        description="Newest first.",
        query=EventsQuerySchema,
        auth=BEARER,
        response_example={
            "events": [
                {
                    "id": 1,
                    "event": "login_succeeded",
                    "occurred_at": "2026-12-01T10:00:00Z",
                    "session_id": SESSION["id"],
                    "ip": "203.0.113.7",
                    "user_agent": "Mozilla/5.0",
                    "request_id": "6f1c0e2a",
                    "data": {},
                }
            ],
            "page": 1,
            "per_page": 20,
            "total": 1,
        },
    ),
    # Two-factor
    "two_factor.status": Op(
        "Two-factor status",
        TWO_FACTOR,
        StatusSchema,
        auth=BEARER,
        errors={403: ("account_disabled",)},
        response_example={"enabled": True, "backup_codes_remaining": 10},
    ),
    "two_factor.setup": Op(
        "Start TOTP enrolment",
        TWO_FACTOR,
        SetupSchema,
        description="A new secret and its QR code; not enabled until `POST /enable`.",
        query=SetupQuerySchema,
        auth=BEARER,
        errors={403: ("account_disabled",), 409: ("conflict",)},
        response_example={
            "secret": "JBSWY3DPEHPK3PXP",
            "otpauth_uri": "otpauth://totp/Auth%20Service:alice%40example.com"
            "?secret=JBSWY3DPEHPK3PXP&issuer=Auth%20Service",
            "qr_code": "data:image/png;base64,iVBORw0KGgo...",
        },
    ),
    "two_factor.enable": Op(
        "Enable TOTP with a first code",
        TWO_FACTOR,
        BackupCodesSchema,
        description="Answers the 10 backup codes, shown once.",
        body=CodeSchema,
        auth=BEARER,
        errors={401: ("invalid_mfa_code",), 403: ("account_disabled",), 409: ("conflict",)},
        request_example={"code": "123456"},
        response_example=BACKUP_CODES,
    ),
    "two_factor.disable": Op(
        "Disable two-factor",
        TWO_FACTOR,
        MessageSchema,
        description="The password and a code. An account without a password (OAuth or magic "
        "link only) sends the code alone, with a fresh access token (from a sign-in within "
        "its lifetime, not from a refresh).",
        body=DisableSchema,
        auth=BEARER,
        errors={
            401: ("invalid_credentials", "invalid_mfa_code", "fresh_token_required"),
            403: ("account_disabled",),
            409: ("conflict",),
        },
        request_example={"password": PASSWORD, "code": "123456"},
        response_example={"message": "Two-factor authentication is disabled."},
    ),
    "two_factor.backup_codes": Op(
        "New backup codes (the old ones are void)",
        TWO_FACTOR,
        BackupCodesSchema,
        body=CodeSchema,
        auth=BEARER,
        errors={401: ("invalid_mfa_code",), 403: ("account_disabled",), 409: ("conflict",)},
        request_example={"code": "123456"},
        response_example=BACKUP_CODES,
    ),
    "two_factor.verify": Op(
        "Second sign-in step",
        TWO_FACTOR,
        TokenPairSchema,
        description="The `mfa_token` of login with a TOTP or backup code; each code works once.",
        body=VerifySchema,
        errors={
            401: ("invalid_mfa_code", "token_invalid", "token_expired"),
            403: ("account_disabled",),
        },
        request_example={"mfa_token": MFA_CHALLENGE["mfa_token"], "code": "123456"},
        response_example=TOKEN_PAIR,
    ),
    # OAuth
    "oauth.providers": Op(
        "Configured providers",
        OAUTH,
        ProviderListSchema,
        no_store=False,
        response_example={"providers": [{"name": "google", "display_name": "Google"}]},
    ),
    "oauth.authorize": Op(
        "Start a browser sign-in",
        OAUTH,
        None,
        status=302,
        description="Redirects to the provider (with state, nonce and PKCE S256). "
        "`redirect_uri` must be on the allow-list. Optional `code_challenge` with "
        "`code_challenge_method=S256` (PKCE between the client and this service; `plain`, or a "
        "challenge without a method, is 422): `/exchange` then needs the `code_verifier`. "
        "Sets a cookie binding the sign-in to this browser: the callback of a sign-in finished "
        "in another browser signs nobody in. Each call starts a flow kept for 10 minutes: the "
        "per-IP limit is tight (20 a minute by default).",
        query=AuthorizeQuerySchema,
        errors={400: ("bad_request",), 404: ("not_found",), 502: ("upstream_error",)},
        other_responses=AUTHORIZE_REDIRECT,
        no_store=False,
    ),
    "oauth.callback": {
        method: Op(
            "The provider's answer",
            OAUTH,
            None,
            status=302,
            description="Signs the user in or up, then redirects to the client's `redirect_uri` "
            "with a one-time `code` (or `error`). The callback of a link flow links nothing: it "
            "redirects with a one-time `link_code` for `POST /api/v1/oauth/link/confirm`. The "
            "client's `state` comes back when it sent one. A sign-in callback reached by a "
            "browser without the binding cookie of `/authorize` (another browser's flow) "
            "redirects with `error=invalid_request` and signs nobody in. Apple posts a form.",
            query=OAuthCallbackSchema if method == "GET" else None,
            form=OAuthCallbackSchema if method == "POST" else None,
            errors={400: ("bad_request",), 404: ("not_found",)},
            other_responses=REDIRECT,
            no_store=False,
        )
        for method in ("GET", "POST")
    },
    "oauth.exchange": Op(
        "Trade the one-time code for tokens",
        OAUTH,
        SIGN_IN_RESULT,
        body=ExchangeSchema,
        description="`code_verifier` is required when `/authorize` was given a `code_challenge`, "
        "and refused otherwise; a missing or wrong verifier is 400 `invalid_token` and spends "
        "the code.",
        errors={400: ("invalid_token",), 403: ("account_disabled", "email_not_verified")},
        request_example={
            "code": "Yk3n8Q0s",
            "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        },
        response_examples=SIGN_IN_EXAMPLES,
    ),
    "oauth.native_token": Op(
        "Native apps: sign in with an id_token or a PKCE code",
        OAUTH,
        SIGN_IN_RESULT,
        description="`id_token` (Google, Apple), or `code` + `code_verifier` + `redirect_uri`.",
        body=NativeTokenSchema,
        errors={
            400: ("invalid_token",),
            401: ("token_invalid", "token_expired"),
            403: ("account_disabled", "email_not_verified", "oauth_email_unverified"),
            404: ("not_found",),
            409: ("account_exists_unverified", "oauth_already_linked"),
            502: ("upstream_error",),
        },
        request_example={"id_token": "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJnb29nbGUifQ.c2ln"},
        response_examples=SIGN_IN_EXAMPLES,
    ),
    "oauth.accounts": Op(
        "Linked provider accounts",
        OAUTH,
        OAuthAccountListSchema,
        auth=BEARER,
        errors={403: ("account_disabled",)},
        response_example={
            "accounts": [
                {
                    "provider": "google",
                    "email": EMAIL,
                    "email_verified": True,
                    "linked_at": "2026-12-01T10:00:00Z",
                    "last_login_at": None,
                }
            ]
        },
    ),
    "oauth.link": Op(
        "Start linking a provider to this user",
        OAUTH,
        AuthorizationUrlSchema,
        description="Open `authorization_url` in the browser. The callback links nothing: it "
        "redirects to `redirect_uri` with a one-time `link_code` (and your `state`), which this "
        "same user confirms with `POST /api/v1/oauth/link/confirm`. Needs a fresh access token "
        "and a verified email.",
        body=LinkSchema,
        body_required=False,
        auth=BEARER,
        errors={
            400: ("bad_request",),
            401: ("fresh_token_required",),
            403: ("account_disabled", "email_not_verified"),
            404: ("not_found",),
            502: ("upstream_error",),
        },
        request_example={"redirect_uri": "https://app.example.com/oauth/done", "state": "x1"},
        response_example={
            "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth?client_id=..."
        },
    ),
    "oauth.link_confirm": Op(
        "Finish linking a provider",
        OAUTH,
        LinkedAccountSchema,
        description="The `link_code` the callback of a link flow sent to the client, with a "
        "fresh access token of the user who started the link. The code works once and for "
        "60 seconds, and is spent by any answer: another user's token is 403 `forbidden` and "
        "links nothing.",
        body=LinkConfirmSchema,
        auth=BEARER,
        errors={
            400: ("invalid_token",),
            401: ("fresh_token_required",),
            403: ("forbidden", "email_not_verified", "account_disabled"),
            409: ("oauth_already_linked",),
        },
        request_example={"code": "Yk3n8Q0sLm2p"},
        response_example={
            "account": {
                "provider": "google",
                "email": EMAIL,
                "email_verified": True,
                "linked_at": "2026-12-01T10:00:00Z",
                "last_login_at": None,
            }
        },
    ),
    "oauth.unlink": Op(
        "Unlink a provider",
        OAUTH,
        None,
        status=204,
        description="409 when it is the user's only way to sign in.",
        auth=BEARER,
        errors={
            401: ("fresh_token_required",),
            403: ("account_disabled",),
            404: ("not_found",),
            409: ("last_sign_in_method",),
        },
        no_store=False,
    ),
}


# --- what follows from the table -------------------------------------------------------------


def _error_messages() -> dict[str, str]:
    """code -> default message, from the error classes themselves (for the examples)."""
    messages = {code: message for code, message in HTTP_CODES.values()}
    pending: list[type[AppError]] = [AppError]
    while pending:
        cls = pending.pop()
        messages.setdefault(cls.code, cls.message)
        pending.extend(cls.__subclasses__())
    return messages


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
    return _error_response_object(status, codes)


def _error_response_object(status: int, codes: tuple[str, ...]) -> dict[str, Any]:
    examples = {code: {"$ref": f"#/components/examples/{code}"} for code in codes}
    return {
        "description": ", ".join(f"`{code}`" for code in codes),
        "headers": _headers(no_store=True, rate_limited=status == 429, retry_after=status == 429),
        "content": {"application/json": {"schema": ErrorSchema, "examples": examples}},
    }


def _error_examples(document: dict[str, Any]) -> dict[str, Any]:
    """One example envelope per error code the document uses (``components/examples``)."""
    messages = _error_messages()
    used = sorted(set(re.findall(r'"#/components/examples/([^"]+)"', _dump(document))))
    return {
        code: {
            "summary": messages.get(code) or code,
            "value": {
                "error": {
                    "code": code,
                    "message": messages.get(code, ""),
                    "details": VALIDATION_DETAILS if code == "validation_error" else {},
                },
                "request_id": "6f1c0e2a9b7d4c3e8f5a1b2c3d4e5f60",
            },
        }
        for code in used
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


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    parameters = []
    for name in sorted(rule.arguments):
        spec = PATH_PARAMETERS.get(name, {"schema": {"type": "string"}})
        parameters.append({"in": "path", "name": name, "required": True, **spec})
    return parameters


def operations_of(endpoint: str, methods: list[str]) -> dict[str, Op]:
    entry = OPERATIONS[endpoint]
    if isinstance(entry, Op):
        return {method: entry for method in methods}
    return {method: entry[method] for method in methods if method in entry}


def _rules(app: Flask) -> dict[str, list[Rule]]:
    rules: dict[str, list[Rule]] = {}
    for rule in app.url_map.iter_rules():
        rules.setdefault(rule.endpoint, []).append(rule)
    return rules


def _methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - IGNORED_METHODS)


def undocumented_endpoints(app: Flask) -> list[str]:
    """Routes of ``app`` that :data:`OPERATIONS` does not describe (``endpoint METHOD``)."""
    missing = []
    for endpoint, rules in _rules(app).items():
        if endpoint in NOT_OPERATIONS:
            continue
        for rule in rules:
            documented = operations_of(endpoint, _methods(rule)) if endpoint in OPERATIONS else {}
            missing += [f"{endpoint} {m}" for m in _methods(rule) if m not in documented]
    return sorted(missing)


def stale_entries(app: Flask) -> list[str]:
    """Entries of :data:`OPERATIONS` that name no route of ``app``."""
    rules = _rules(app)
    stale = []
    for endpoint, entry in OPERATIONS.items():
        served = {m for rule in rules.get(endpoint, []) for m in _methods(rule)}
        wanted = {"*"} if isinstance(entry, Op) else set(entry)
        if not served:
            stale.append(endpoint)
        elif wanted != {"*"}:
            stale += [f"{endpoint} {m}" for m in sorted(wanted - served)]
    return stale


# --- building the document ---------------------------------------------------------------------


def _component_name(schema: type[Schema] | Schema) -> str:
    """``two_factor.schemas.StatusSchema`` -> ``TwoFactorStatus``: unique and readable."""
    resolved = resolve_schema_cls(schema)
    cls = resolved[0] if isinstance(resolved, list) else resolved
    name = cls.__name__.removesuffix("Schema")
    prefix = {"two_factor": "TwoFactor", "oauth": "OAuth"}.get(cls.__module__.split(".")[1], "")
    return name if name.startswith(prefix) else prefix + name


def _string_bounds(self: Any, field: Field, **_kwargs: Any) -> dict[str, Any]:
    """SafeString keeps its bounds as attributes, not validators: publish them."""
    if not isinstance(field, SafeString):
        return {}
    bounds: dict[str, Any] = {"maxLength": field.max_length}
    if field.min_length:
        bounds["minLength"] = field.min_length
    if isinstance(field, Email):
        bounds["format"] = "email"
    return bounds


def _responses_fill_every_field(document: dict[str, Any]) -> None:
    """The code's dump schemas declare no ``required`` (dumping ignores it), yet they write every
    field they list. A component used only in responses and declaring nothing required is
    therefore published with every property required."""
    components = document["components"]["schemas"]
    refs = re.compile(r'"#/components/schemas/([^"]+)"')

    def reachable(start: Any) -> set[str]:
        found: set[str] = set()
        pending = set(refs.findall(_dump(start)))
        while pending:
            name = pending.pop()
            if name not in found:
                found.add(name)
                pending |= set(refs.findall(_dump(components[name])))
        return found

    operations = [
        op for item in document["paths"].values() for op in item.values() if isinstance(op, dict)
    ]
    requested = reachable([[op.get("requestBody"), op.get("parameters")] for op in operations])
    answered = reachable([op["responses"] for op in operations])
    for name in sorted(answered - requested):
        schema = components[name]
        if "required" not in schema and schema.get("properties"):
            schema["required"] = list(schema["properties"])


def _dump(value: Any) -> str:
    return json.dumps(value, default=str)


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s documented routes, as a dict."""
    plugin = MarshmallowPlugin(schema_name_resolver=_component_name)
    spec = APISpec(
        title=TITLE,
        version=_version(),
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": DESCRIPTION},
        servers=[{"url": "/"}],
        tags=TAGS,
    )
    assert plugin.converter is not None  # noqa: S101 - set by APISpec(plugins=...)
    plugin.converter.add_attribute_function(_string_bounds)
    plugin.map_to_openapi_type(UTCTime, "string", "date-time")
    plugin.map_to_openapi_type(SessionCursor, "string", None)
    _add_components(spec)
    spec.components.schema(_component_name(ErrorSchema), schema=ErrorSchema)
    for (status, codes), name in SHARED_ERRORS.items():
        spec.components.response(name, _error_response_object(status, codes))
    for path, item in _path_items(app):
        spec.path(path=path, **item)
    document = spec.to_dict()
    document["components"]["examples"] = _error_examples(document)
    _responses_fill_every_field(document)
    return document


def _path_items(app: Flask) -> Iterator[tuple[str, dict[str, Any]]]:
    rules = _rules(app)
    for endpoint in OPERATIONS:
        for rule in rules.get(endpoint, []):
            methods = _methods(rule)
            ops = operations_of(endpoint, methods)
            # deepcopy: apispec resolves schemas in place, and the table serves every app
            yield (
                openapi_path(rule),
                copy.deepcopy(
                    {
                        "operations": {
                            method.lower(): operation(
                                endpoint, method, rule, op, several=len(ops) > 1
                            )
                            for method, op in ops.items()
                        },
                        "parameters": _path_parameters(rule),
                    }
                ),
            )


def _add_components(spec: APISpec) -> None:
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


def _version() -> str:
    try:
        return importlib.metadata.version("auth-microservice")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


# --- serving it --------------------------------------------------------------------------------


_BUILD_LOCK = threading.Lock()


@dataclass(frozen=True)
class ServedSpec:
    """The document as served: its JSON bytes and their (strong) entity tag."""

    body: bytes
    etag: str


class _Swagger(Swagger):
    """flasgger serving our document instead of one parsed from view docstrings.

    The document is built and encoded once per app, on first use (most apps, such as tests
    and workers, never serve it), under a lock so that a burst of first requests builds it
    once; every request then gets the same bytes, or a 304 for a copy it holds.
    """

    def get_apispecs(self, endpoint: str = "apispec") -> dict[str, Any]:
        document: dict[str, Any] | None = self.app.extensions.get("apispec")
        if document is None:
            with _BUILD_LOCK:
                document = self.app.extensions.get("apispec")
                if document is None:
                    document = self.app.extensions["apispec"] = build_spec(self.app)
        return document

    def served(self) -> ServedSpec:
        cached: ServedSpec | None = self.app.extensions.get("apispec_served")
        if cached is None:
            # Not flasgger's jsonify: the app's JSON provider sorts keys, and the table's order
            # (fields as the schemas declare them, paths as API.md lists them) reads better.
            body = json.dumps(self.get_apispecs()).encode()
            etag = hashlib.sha256(body).hexdigest()[:32]
            cached = self.app.extensions["apispec_served"] = ServedSpec(body, etag)
        return cached

    def serve(self) -> BaseResponse:
        spec = self.served()
        response = Response(spec.body, mimetype="application/json")
        response.set_etag(spec.etag)
        response.headers["Cache-Control"] = f"public, max-age={SPEC_MAX_AGE}"
        return response.make_conditional(request)


FLASGGER_CONFIG: dict[str, Any] = {
    "headers": [],
    "specs": [{"endpoint": "apispec", "route": SPEC_ROUTE}],
    "static_url_path": "/flasgger_static",
    "specs_route": DOCS_ROUTE,
    "oauth_redirect": "/apidocs/oauth2-redirect.html",  # under /apidocs: the docs CSP applies
    "swagger_ui": True,
    "uiversion": 3,
    "openapi": OPENAPI_VERSION,
    "title": TITLE,
    "hide_top_bar": True,
    "auth": {},  # flasgger renders this into `ui.initOAuth(...)`; None would be a JS error
    "ui_params": {"displayRequestDuration": True, "docExpansion": "list"},
}


def _self_hosted_templates(app: Flask) -> None:
    """flasgger's page head loads Google Fonts; the docs must load nothing from elsewhere."""
    blueprint = app.blueprints["flasgger"]
    original: BaseLoader | None = blueprint.jinja_loader
    assert original is not None  # noqa: S101 - flasgger registers its templates folder
    head = Path(blueprint.root_path, blueprint.template_folder or "", "flasgger", "head.html")
    text = re.sub(r"<link[^>]*fonts\.googleapis\.com[^>]*>\s*", "", head.read_text("utf-8"))
    blueprint.jinja_loader = ChoiceLoader([DictLoader({"flasgger/head.html": text}), original])


def init_app(app: Flask) -> None:
    """Serve ``/apispec.json`` and ``/apidocs/`` (call after every blueprint is registered)."""
    swagger = _Swagger(app, config=dict(FLASGGER_CONFIG), merge=False)
    app.view_functions["flasgger.apispec"] = swagger.serve
    _self_hosted_templates(app)
    missing, stale = undocumented_endpoints(app), stale_entries(app)
    if missing or stale:
        logger.warning(
            "API documentation out of date", extra={"undocumented": missing, "stale": stale}
        )
