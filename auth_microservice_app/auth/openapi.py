"""The OpenAPI description of ``/api/v1/auth``: one ``Op`` (``web/openapi.py``) per route, the
bodies the routes build by hand, and their examples (API.md). ``apidocs.py`` assembles it."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from ..web.openapi import (
    BEARER,
    EMAIL,
    PASSWORD,
    REFRESH,
    REFRESH_TOKEN,
    SIGN_IN_EXAMPLES,
    SIGN_IN_RESULT,
    TOKEN_PAIR,
    USER,
    MessageSchema,
    Op,
)
from ..web.schemas import SecurityEventSchema, TokenPairSchema, UserSchema
from .schemas import (
    DeleteAccountSchema,
    EmailChangeSchema,
    EmailOnlySchema,
    EventsQuerySchema,
    LinkTokenSchema,
    LoginSchema,
    LogoutSchema,
    PasswordChangeSchema,
    PasswordResetSchema,
    RefreshSchema,
    RegisterSchema,
    RevokeSchema,
    SessionSchema,
    SessionsQuerySchema,
    UpdateMeSchema,
)

TAG = "Account and session"
TAG_DESCRIPTION = "Registration, sign-in, tokens, sessions, email links."


# --- bodies the routes build by hand (they nest the real schemas) ------------------------------


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


# --- examples (API.md) -------------------------------------------------------------------------

NEW_PASSWORD = "battery staple correct horse"  # noqa: S105
LINK_TOKEN = "q4Zt0fV3m9o2Yw8xK1pC6sH5uJ7nB0aR"  # noqa: S105
ACCEPTED = {"message": "If the address belongs to an account, an email is on its way."}
SESSION = {
    "id": "6a2f0d4c-1b3e-4c5d-8e9f-0a1b2c3d4e5f",
    "created_at": "2026-12-01T10:00:00Z",
    "last_used_at": "2026-12-01T10:05:00Z",
    "user_agent": "Mozilla/5.0",
    "ip": "203.0.113.7",
    "current": True,
}


# --- the table --------------------------------------------------------------------------------

#: Path parameters, by the name the routes give them.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "session_id": {"description": "A session id.", "schema": {"type": "string", "format": "uuid"}},
}


def _mailed(summary: str) -> Op:
    """A link by email: 202 whether or not the address exists (no enumeration)."""
    return Op(
        summary,
        TAG,
        MessageSchema,
        status=202,
        description="202 whether or not the address exists.",
        body=EmailOnlySchema,
        request_example={"email": EMAIL},
        response_example=ACCEPTED,
    )


#: Flask endpoint -> its operation, or method -> operation where one view serves several methods.
OPERATIONS: dict[str, Op | dict[str, Op]] = {
    "auth.register": Op(
        "Create an account",
        TAG,
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
        TAG,
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
        TAG,
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
        TAG,
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
        TAG,
        LogoutAllResultSchema,
        auth=BEARER,
        response_example={"message": "Signed out everywhere.", "sessions_revoked": 3},
    ),
    "auth.revoke": Op(
        "Revoke a token (RFC 7009)",
        TAG,
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
        TAG,
        UserResultSchema,
        auth=BEARER,
        errors={403: ("account_disabled",)},
        response_example={"user": USER},
    ),
    "auth.update_me": Op(
        "Change the profile",
        TAG,
        UserResultSchema,
        body=UpdateMeSchema,
        auth=BEARER,
        errors={403: ("account_disabled",)},
        request_example={"name": "Alice Liddell"},
        response_example={"user": {**USER, "name": "Alice Liddell"}},
    ),
    "auth.sessions": Op(
        "Open sessions",
        TAG,
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
        TAG,
        None,
        status=204,
        description="Another user's session, or an unknown id, is 404.",
        auth=BEARER,
        errors={404: ("not_found",)},
        no_store=False,
    ),
    "auth.verify_email": Op(
        "Verify the email address",
        TAG,
        UserResultSchema,
        description="Spends the token from the emailed link. POST only: mail scanners follow "
        "links, so no GET spends a token.",
        body=LinkTokenSchema,
        errors={400: ("invalid_token",), 403: ("account_disabled",)},
        request_example={"token": LINK_TOKEN},
        response_example={"user": USER},
    ),
    "auth.verify_email_resend": _mailed("Send the verification email again"),
    "auth.password_forgot": _mailed("Email a password-reset link"),
    "auth.password_reset": Op(
        "Set a new password with the emailed token",
        TAG,
        MessageSchema,
        description="Every session of the user is revoked.",
        body=PasswordResetSchema,
        errors={400: ("invalid_token",), 403: ("account_disabled",), 422: ("weak_password",)},
        request_example={"token": LINK_TOKEN, "password": NEW_PASSWORD},
        response_example={"message": "Password updated. Every session was signed out."},
    ),
    "auth.password_change": Op(
        "Change the password",
        TAG,
        TokenPairSchema,
        description="Answers a new token pair; every other session is revoked.",
        body=PasswordChangeSchema,
        auth=BEARER,
        errors={401: ("invalid_credentials",), 403: ("account_disabled",), 422: ("weak_password",)},
        request_example={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        response_example=TOKEN_PAIR,
    ),
    "auth.magic_link": _mailed("Email a sign-in link"),
    "auth.magic_link_verify": Op(
        "Sign in with the emailed link",
        TAG,
        SIGN_IN_RESULT,
        description="A token pair, or an MFA challenge as for login.",
        body=LinkTokenSchema,
        errors={400: ("invalid_token",), 403: ("account_disabled",)},
        request_example={"token": LINK_TOKEN},
        response_examples=SIGN_IN_EXAMPLES,
    ),
    "auth.security_events": Op(
        "The user's security events (audit log)",
        TAG,
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
    "auth.change_email": Op(
        "Change the email address (sends a confirmation link)",
        TAG,
        MessageSchema,
        status=202,
        description="Needs a fresh access token (from a sign-in, not a refresh) and the "
        "password, unless the account has none. A single-use link goes to the new address (a "
        "second request voids the first), a notice to the current one. An address another "
        "account holds is 409 `email_taken`, as for registration.",
        body=EmailChangeSchema,
        auth=BEARER,
        errors={
            401: ("invalid_credentials", "fresh_token_required"),
            403: ("account_disabled",),
            409: ("email_taken",),
        },
        request_example={"new_email": "alice.new@example.com", "password": PASSWORD},
        response_example={
            "message": "A confirmation link is on its way to the new address; it changes once "
            "followed."
        },
    ),
    "auth.confirm_email_change": Op(
        "Confirm the new email address with the emailed token",
        TAG,
        UserResultSchema,
        description="Spends the token: the address changes (and is verified), every other "
        "session is revoked (the caller's own survives when it sends its access token), the old "
        "address is told. 409 `email_taken` when another account took the address meanwhile.",
        body=LinkTokenSchema,
        errors={400: ("invalid_token",), 403: ("account_disabled",), 409: ("email_taken",)},
        request_example={"token": LINK_TOKEN},
        response_example={"user": {**USER, "email": "alice.new@example.com"}},
    ),
    "auth.export_me": Op(
        "Export every personal datum held (JSON download)",
        TAG,
        {"type": "object", "additionalProperties": True},
        description="`Content-Disposition: attachment`. Sections: `profile`, `sessions`, "
        "`providers`, `passkeys` (empty until passkeys exist), `two_factor` (status, dates, no "
        "secret), `security_events`, `email_links` (metadata of link tokens), "
        "`revoked_access_tokens`, `mail`. Never a hash, a token or a secret.",
        auth=BEARER,
        errors={403: ("account_disabled",)},
        response_example={
            "format_version": 1,
            "profile": {"id": USER["id"], "email": EMAIL, "name": "Alice"},
            "sessions": [],
            "providers": [],
            "passkeys": [],
            "two_factor": {"enabled": False},
            "security_events": [],
        },
    ),
    "auth.delete_me": Op(
        "Delete the account and its personal data",
        TAG,
        None,
        status=204,
        description="Needs a fresh access token, the password (unless the account has none) "
        "and, with two-factor on, a `code` (TOTP or backup code). Every token dies at once, a "
        "notice goes to the address, which is free to register again. Security events are kept "
        "anonymised.",
        body=DeleteAccountSchema,
        body_required=False,
        auth=BEARER,
        errors={
            401: ("invalid_credentials", "invalid_mfa_code", "fresh_token_required"),
            403: ("account_disabled",),
        },
        request_example={"password": PASSWORD, "code": "123456"},
        no_store=False,
    ),
}
