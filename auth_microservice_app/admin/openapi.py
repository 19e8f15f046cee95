"""The OpenAPI description of ``/api/v1/admin``: one ``Op`` (``web/openapi.py``) per route and
its examples (API.md, "Administration"). ``apidocs.py`` assembles it."""

from __future__ import annotations

from typing import Any

from ..web.openapi import BEARER, USER, Op
from .schemas import (
    AdminEventPageSchema,
    AdminEventsQuerySchema,
    AdminSessionPageSchema,
    AdminSessionsQuerySchema,
    AdminUserPageSchema,
    AdminUserResultSchema,
    ClientCreateSchema,
    ClientListSchema,
    NewClientSchema,
    UserPatchSchema,
    UsersQuerySchema,
)

TAG = "Administration"
TAG_DESCRIPTION = (
    "Every call needs an access token with the `admin` role (403 `forbidden` without it). A "
    "change (any method but GET) also needs a fresh token (401 `fresh_token_required`) and, "
    "when `ADMIN_REQUIRE_2FA` is on (staging, production), a sign-in with a second factor in "
    "`amr` (403 `forbidden`, `details.reason: second_factor_required`); it is recorded as a "
    "security event with the admin as `actor_id`. Lists answer `{items, next_cursor}`: pass "
    "`next_cursor` back as `cursor` for the next page (null on the last)."
)

PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "user_id": {"description": "A user id.", "schema": {"type": "string", "format": "uuid"}},
    "client_id": {"description": "A service client's id.", "schema": {"type": "string"}},
}

CURSOR = "eyJ...opaque"
ADMIN_USER = {**USER, "disabled": False}
DETAILS = {
    **ADMIN_USER,
    "last_login_at": "2026-12-01T10:00:00Z",
    "providers": ["google"],
    "passkeys": [],
    "active_sessions": 2,
}
SESSION = {
    "id": "3f0c6d2e-8a41-4c2b-9d57-1e2f3a4b5c6d",
    "created_at": "2026-12-01T10:00:00Z",
    "last_used_at": "2026-12-01T10:05:00Z",
    "expires_at": "2026-12-31T10:00:00Z",
    "user_agent": "Mozilla/5.0",
    "ip": "203.0.113.7",
    "amr": ["pwd", "otp"],
}
EVENT = {
    "id": 42,
    "event": "roles_changed",
    "occurred_at": "2026-12-01T10:00:00Z",
    "user_id": USER["id"],
    "session_id": None,
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0",
    "request_id": "6f1c0e2a",
    "data": {"actor_id": "9b2e...", "roles": ["user"], "previous_roles": ["user", "support"]},
}
CLIENT = {
    "client_id": "svc_Xq3...",
    "name": "orders",
    "scopes": ["orders:read"],
    "created_at": "2026-12-01T10:00:00Z",
    "rotated_at": None,
    "last_used_at": None,
    "disabled": False,
}
NOT_FOUND = {404: ("not_found",)}
#: What a change can answer beyond a read (see the tag's description).
CHANGE = {401: ("fresh_token_required",)}


def _op(summary: str, response: Any, **kwargs: Any) -> Op:
    errors = {403: ("forbidden",), **kwargs.pop("errors", {})}
    return Op(summary, TAG, response, auth=BEARER, errors=errors, **kwargs)


#: Flask endpoint -> its operation.
OPERATIONS: dict[str, Op | dict[str, Op]] = {
    "admin.list_users": _op(
        "Users",
        AdminUserPageSchema,
        description="In email order. `query` is a case-insensitive prefix of the email or the "
        "name (indexed: fast at millions of users).",
        query=UsersQuerySchema,
        response_example={"items": [ADMIN_USER], "next_cursor": CURSOR},
    ),
    "admin.get_user": _op(
        "One user, with sign-in facts",
        AdminUserResultSchema,
        description="`passkeys` stays empty until passkeys are served.",
        errors=NOT_FOUND,
        response_example={"user": DETAILS},
    ),
    "admin.update_user": _op(
        "Change roles, status, verification or name",
        AdminUserResultSchema,
        description="Losing a role or being disabled revokes every session of the user at "
        "once. 409 when an admin would remove their own admin role, disable themselves, or "
        "leave no active admin.",
        body=UserPatchSchema,
        errors={**CHANGE, **NOT_FOUND, 409: ("conflict",)},
        request_example={"roles": ["user", "support"], "disabled": False},
        response_example={"user": DETAILS},
    ),
    "admin.delete_user": _op(
        "Delete a user's account",
        None,
        status=204,
        description="As `DELETE /api/v1/auth/me`: the account and its personal data are "
        "deleted, every token revoked, a notice mailed; security events are kept anonymised. "
        "409 for the last active admin or your own account (use `DELETE /api/v1/auth/me`).",
        errors={**CHANGE, **NOT_FOUND, 409: ("conflict",)},
        no_store=False,
    ),
    "admin.list_sessions": _op(
        "A user's open sessions",
        AdminSessionPageSchema,
        description="Most recently used first.",
        query=AdminSessionsQuerySchema,
        errors=NOT_FOUND,
        response_example={"items": [SESSION], "next_cursor": None},
    ),
    "admin.revoke_sessions": _op(
        "Revoke every session of a user",
        None,
        status=204,
        errors={**CHANGE, **NOT_FOUND},
        no_store=False,
    ),
    "admin.reset_two_factor": _op(
        "Reset a user's second factor",
        None,
        status=204,
        description="Removes the TOTP secret and the backup codes, revokes every session and "
        "mails the user a notice. 409 when the user has no second factor.",
        errors={**CHANGE, **NOT_FOUND, 409: ("conflict",)},
        no_store=False,
    ),
    "admin.list_events": _op(
        "Every user's security events",
        AdminEventPageSchema,
        description="Newest first. `data.actor_id` names the admin behind a change (null, "
        'with `via: "cli"`, for an operator\'s command).',
        query=AdminEventsQuerySchema,
        response_example={"items": [EVENT], "next_cursor": CURSOR},
    ),
    "admin.list_clients": _op(
        "Service clients",
        ClientListSchema,
        description="Every client on one page (`next_cursor` is null); never a secret.",
        response_example={"items": [CLIENT], "next_cursor": None},
    ),
    "admin.create_client": _op(
        "Create a service client",
        NewClientSchema,
        status=201,
        description="The secret is in this answer only; only a hash is kept.",
        body=ClientCreateSchema,
        errors=CHANGE,
        request_example={"name": "orders", "scopes": ["orders:read"]},
        response_example={**CLIENT, "client_secret": "s3cr3t-shown-once"},
    ),
    "admin.delete_client": _op(
        "Delete a service client",
        None,
        status=204,
        description="Every token it holds is revoked at once.",
        errors={**CHANGE, **NOT_FOUND},
        no_store=False,
    ),
}
