"""Shapes every blueprint shares: the strict base of request bodies, and the user and token
results that signing in answers with."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields

from .fields import UTCTime

# Long enough for any policy, short enough that no one makes us hash a megabyte.
MAX_PASSWORD_INPUT = 1024

MAX_TOKEN_LENGTH = 4096


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


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


class EnrollmentRequiredSchema(Schema):
    """A role of the user requires a second factor (``REQUIRE_2FA_FOR_ROLES``) and none is on:
    no session; ``enrollment_token`` works at ``/2fa/setup`` and ``/2fa/enable`` only."""

    mfa_enrollment_required = fields.Boolean()
    enrollment_token = fields.String()
    expires_in = fields.Integer()


class MfaChallengeSchema(Schema):
    mfa_required = fields.Boolean()
    mfa_token = fields.String()
    methods = fields.List(fields.String())


class SecurityEventSchema(Schema):
    """One security event as its user (``/auth/events``) or an admin (``/admin/events``) sees it."""

    id = fields.Integer()
    event = fields.String()
    occurred_at = UTCTime()
    session_id = fields.UUID(allow_none=True)
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    data = fields.Dict()
