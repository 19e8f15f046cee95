"""The OpenAPI description of ``/api/v1/2fa``: one ``Op`` (``web/openapi.py``) per route and
its examples (API.md). ``apidocs.py`` assembles it."""

from __future__ import annotations

from ..web.openapi import BEARER, MFA_CHALLENGE, PASSWORD, TOKEN_PAIR, MessageSchema, Op
from ..web.schemas import TokenPairSchema
from .schemas import (
    BackupCodesSchema,
    CodeSchema,
    DisableSchema,
    SetupQuerySchema,
    SetupSchema,
    StatusSchema,
    VerifySchema,
)

TAG = "Two-factor"
TAG_DESCRIPTION = "TOTP and backup codes; the second sign-in step."

BACKUP_CODES = {"backup_codes": [f"ABCD-EF{n:02d}" for n in range(10)]}

#: Flask endpoint -> its operation, or method -> operation where one view serves several methods.
OPERATIONS: dict[str, Op | dict[str, Op]] = {
    "two_factor.status": Op(
        "Two-factor status",
        TAG,
        StatusSchema,
        auth=BEARER,
        errors={403: ("account_disabled",)},
        response_example={"enabled": True, "backup_codes_remaining": 10},
    ),
    "two_factor.setup": Op(
        "Start TOTP enrolment",
        TAG,
        SetupSchema,
        description="A new secret and its QR code; not enabled until `POST /enable`. A fresh "
        "access token, or the `enrollment_token` of a sign-in that answered "
        "`mfa_enrollment_required`.",
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
        TAG,
        BackupCodesSchema,
        description="Answers the 10 backup codes, shown once. Takes an `enrollment_token` too; "
        "then sign in again (now with the second factor) for a session.",
        body=CodeSchema,
        auth=BEARER,
        errors={401: ("invalid_mfa_code",), 403: ("account_disabled",), 409: ("conflict",)},
        request_example={"code": "123456"},
        response_example=BACKUP_CODES,
    ),
    "two_factor.disable": Op(
        "Disable two-factor",
        TAG,
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
        TAG,
        BackupCodesSchema,
        body=CodeSchema,
        auth=BEARER,
        errors={401: ("invalid_mfa_code",), 403: ("account_disabled",), 409: ("conflict",)},
        request_example={"code": "123456"},
        response_example=BACKUP_CODES,
    ),
    "two_factor.verify": Op(
        "Second sign-in step",
        TAG,
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
}
