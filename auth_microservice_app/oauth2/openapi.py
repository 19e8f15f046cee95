"""The OpenAPI description of `/oauth2`: OAuth 2.0's wire format (form bodies, RFC 6749 §5.2
errors), with the request and answer shapes Authlib and the kernel produce."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from ..web.openapi import ACCESS_TOKEN, CLIENT, Op

TAG = "Services"
TAG_DESCRIPTION = (
    "OAuth 2.0 for other services: client credentials, introspection, revocation. "
    "Form bodies and OAuth errors, not the JSON envelope."
)
CLIENT_ID = "svc_3kTq9wZ0bXf1mV7yR2aL5pQe"


class ClientAuthForm(Schema):
    client_id = fields.String(metadata={"description": "With `client_secret`, instead of Basic."})
    client_secret = fields.String()


class TokenRequestForm(ClientAuthForm):
    grant_type = fields.String(required=True, validate=validate.OneOf(["client_credentials"]))
    scope = fields.String(
        metadata={"description": "Space-separated; a subset of the client's (default: all)."}
    )


class TokenResponseSchema(Schema):
    access_token = fields.String(required=True, metadata={"description": "An RFC 9068 JWT."})
    token_type = fields.String(required=True, validate=validate.OneOf(["Bearer"]))
    expires_in = fields.Integer(required=True)
    scope = fields.String(required=True)


class TokenForm(ClientAuthForm):
    token = fields.String(required=True)
    token_type_hint = fields.String(
        validate=validate.OneOf(["access_token", "refresh_token"]),
        metadata={"description": "Only a hint: the token says what it is."},
    )


class IntrospectionSchema(Schema):
    """RFC 7662 §2.2: ``active`` alone when inactive; the token's claims when active."""

    class Meta:
        unknown = INCLUDE

    active = fields.Boolean(required=True)
    token_type = fields.String(validate=validate.OneOf(["Bearer"]))
    sub = fields.String()
    client_id = fields.String()
    scope = fields.String(metadata={"description": "A service's token."})
    iss = fields.String()
    aud = fields.String()
    exp = fields.Integer()
    iat = fields.Integer()
    nbf = fields.Integer()
    jti = fields.String()
    sid = fields.String(metadata={"description": "A user's token: its session."})
    username = fields.String(metadata={"description": "A user's token: the email."})
    email = fields.String()
    email_verified = fields.Boolean()
    roles = fields.List(fields.String())
    amr = fields.List(fields.String())
    fresh = fields.Boolean()


class EmptySchema(Schema):
    """RFC 7009: an empty JSON object."""


OPERATIONS: dict[str, Op | dict[str, Op]] = {
    "oauth2.token": Op(
        "A service's own access token (client credentials, RFC 6749 §4.4)",
        TAG,
        TokenResponseSchema,
        description="An RFC 9068 JWT (`typ: at+jwt`, `sub` = `client_id`, `scope`). Rate "
        "limited per client (`RATELIMIT_OAUTH2_TOKEN`); failed client authentications also "
        "per IP.",
        form=TokenRequestForm,
        auth=CLIENT,
        oauth_errors=True,
        rate_limited=True,
        errors={
            400: ("invalid_request", "invalid_scope", "unsupported_grant_type"),
            401: ("invalid_client",),
        },
        request_example={"grant_type": "client_credentials", "scope": "orders:read"},
        response_example={
            "access_token": ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": 900,
            "scope": "orders:read",
        },
    ),
    "oauth2.introspect": Op(
        "Is this token active? (RFC 7662)",
        TAG,
        IntrospectionSchema,
        description="For clients holding the `introspect` scope. Revoked (signed out, password "
        "reset, disabled user or client), expired, refresh and unknown tokens are "
        '`{"active": false}`. One Redis round trip. Rate limited per client '
        "(`RATELIMIT_OAUTH2_INTROSPECT`).",
        form=TokenForm,
        auth=CLIENT,
        oauth_errors=True,
        rate_limited=True,
        errors={
            400: ("invalid_request",),
            401: ("invalid_client",),
            403: ("insufficient_scope",),
        },
        request_example={"token": ACCESS_TOKEN, "token_type_hint": "access_token"},
        response_examples={
            "user": {
                "summary": "A user's access token",
                "value": {
                    "active": True,
                    "token_type": "Bearer",
                    "sub": "0b6f1c2e-5d7a-4f3e-9b1a-2c8d4e6f8a01",
                    "client_id": "first-party",
                    "iss": "https://auth.example.com",
                    "aud": "auth-service",
                    "exp": 1796119200,
                    "iat": 1796118300,
                    "nbf": 1796118300,
                    "jti": "q4Zt0fV3m9o2Yw8xK1pC6s",
                    "sid": "5a1f0c3e-2b4d-4e6f-8a9b-0c1d2e3f4a5b",
                    "username": "alice@example.com",
                    "email": "alice@example.com",
                    "email_verified": True,
                    "roles": ["user"],
                    "amr": ["pwd"],
                    "fresh": True,
                },
            },
            "service": {
                "summary": "A service's token",
                "value": {
                    "active": True,
                    "token_type": "Bearer",
                    "sub": CLIENT_ID,
                    "client_id": CLIENT_ID,
                    "scope": "orders:read",
                    "iss": "https://auth.example.com",
                    "aud": "auth-service",
                    "exp": 1796119200,
                    "iat": 1796118300,
                    "nbf": 1796118300,
                    "jti": "h7Ye2kLq0sNw4Rt9Vb3Xc1",
                },
            },
            "inactive": {"summary": "Revoked, expired or unknown", "value": {"active": False}},
        },
    ),
    "oauth2.revoke": Op(
        "Revoke a token the client was issued (RFC 7009)",
        TAG,
        EmptySchema,
        description="200 for an unknown or expired token too. Users revoke their own tokens at "
        "`POST /api/v1/auth/revoke`.",
        form=TokenForm,
        auth=CLIENT,
        oauth_errors=True,
        rate_limited=True,
        errors={
            400: ("invalid_request", "invalid_grant", "unsupported_token_type"),
            401: ("invalid_client",),
        },
        request_example={"token": ACCESS_TOKEN, "token_type_hint": "access_token"},
        response_example={},
    ),
}
