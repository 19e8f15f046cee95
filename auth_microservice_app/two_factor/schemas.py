"""Request and response shapes of `/api/v1/2fa`; load schemas reject unknown fields."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..web.fields import SafeString
from ..web.schemas import MAX_PASSWORD_INPUT, MAX_TOKEN_LENGTH, StrictSchema
from .totp import QR_RENDERERS

#: Room for "123 456" and "ABCD-EFGH " with stray spaces; nothing longer is a code.
MAX_CODE_LENGTH = 32


class SetupQuerySchema(StrictSchema):
    format = fields.String(load_default="png", validate=validate.OneOf(sorted(QR_RENDERERS)))


class CodeSchema(StrictSchema):
    code = SafeString(required=True, min_length=1, max_length=MAX_CODE_LENGTH)


class DisableSchema(StrictSchema):
    """``password`` is required when the account has one; without one, a fresh sign-in is."""

    password = SafeString(max_length=MAX_PASSWORD_INPUT, load_default=None)
    code = SafeString(required=True, min_length=1, max_length=MAX_CODE_LENGTH)


class VerifySchema(StrictSchema):
    mfa_token = SafeString(required=True, min_length=1, max_length=MAX_TOKEN_LENGTH)
    code = SafeString(required=True, min_length=1, max_length=MAX_CODE_LENGTH)


class StatusSchema(Schema):
    enabled = fields.Boolean()
    backup_codes_remaining = fields.Integer()


class SetupSchema(Schema):
    secret = fields.String()
    otpauth_uri = fields.String()
    qr_code = fields.String()


class BackupCodesSchema(Schema):
    backup_codes = fields.List(fields.String())
