"""Request and response shapes of `/api/v1/auth`; load schemas reject unknown fields."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..utils.fields import Email, SafeString, UTCTime

# Long enough for any policy, short enough that no one makes us hash a megabyte.
MAX_PASSWORD_INPUT = 1024
MAX_TOKEN_LENGTH = 4096


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class RegisterSchema(StrictSchema):
    email = Email(required=True)
    password = SafeString(required=True, max_length=MAX_PASSWORD_INPUT)
    name = SafeString(max_length=200, allow_none=True, load_default=None)


class LoginSchema(StrictSchema):
    email = Email(required=True)
    password = SafeString(required=True, max_length=MAX_PASSWORD_INPUT)


class RefreshSchema(StrictSchema):
    refresh_token = SafeString(max_length=MAX_TOKEN_LENGTH, load_default=None)


class LogoutSchema(StrictSchema):
    refresh_token = SafeString(max_length=MAX_TOKEN_LENGTH, load_default=None)


class RevokeSchema(StrictSchema):
    token = SafeString(required=True, min_length=1, max_length=MAX_TOKEN_LENGTH)
    token_type_hint = fields.String(
        load_default=None, validate=lambda v: v in {"access_token", "refresh_token"}
    )


class UpdateMeSchema(StrictSchema):
    name = SafeString(required=True, max_length=200, allow_none=True)


class EmailOnlySchema(StrictSchema):
    email = Email(required=True)


class LinkTokenSchema(StrictSchema):
    token = SafeString(required=True, min_length=1, max_length=512)


class PasswordResetSchema(StrictSchema):
    token = SafeString(required=True, min_length=1, max_length=512)
    password = SafeString(required=True, max_length=MAX_PASSWORD_INPUT)


class PasswordChangeSchema(StrictSchema):
    current_password = SafeString(required=True, max_length=MAX_PASSWORD_INPUT)
    new_password = SafeString(required=True, max_length=MAX_PASSWORD_INPUT)


class UserSchema(Schema):
    id = fields.UUID()
    email = fields.String()
    name = fields.String(allow_none=True)
    email_verified = fields.Boolean()
    two_factor_enabled = fields.Boolean()
    roles = fields.List(fields.String())
    created_at = UTCTime()
    updated_at = UTCTime()


class TokenPairSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class MfaChallengeSchema(Schema):
    mfa_required = fields.Boolean()
    mfa_token = fields.String()
    methods = fields.List(fields.String())


class EventsQuerySchema(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class SecurityEventSchema(Schema):
    id = fields.Integer()
    event = fields.String()
    occurred_at = UTCTime()
    session_id = fields.UUID(allow_none=True)
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    data = fields.Dict()


class SessionSchema(Schema):
    id = fields.UUID()
    created_at = UTCTime()
    last_used_at = UTCTime()
    user_agent = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    current = fields.Boolean()
