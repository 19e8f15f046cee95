"""The OpenAPI description of the app-level routes: probes (``health.py``), metrics
(``metrics.py``) and key discovery (``wellknown.py``), with the bodies they build by hand and
their examples. ``apidocs.py`` describes its own two routes and assembles the document."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from .identity.tokens import ACCESS_TOKEN_CLAIMS
from .web.openapi import ErrorBodySchema, Op

TAG = "Service"
TAG_DESCRIPTION = "Probes, metrics, key discovery and this documentation."


# --- bodies the routes build by hand -----------------------------------------------------------


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


class AuthorizationServerMetadataSchema(Schema):
    """RFC 8414: only what is true (no authorization endpoint, so no response type)."""

    issuer = fields.String(required=True)
    jwks_uri = fields.String(required=True)
    token_endpoint = fields.String(required=True)
    introspection_endpoint = fields.String(required=True)
    revocation_endpoint = fields.String(required=True)
    grant_types_supported = fields.List(fields.String(), required=True)
    response_types_supported = fields.List(fields.String(), required=True)
    token_endpoint_auth_methods_supported = fields.List(fields.String(), required=True)
    introspection_endpoint_auth_methods_supported = fields.List(fields.String(), required=True)
    revocation_endpoint_auth_methods_supported = fields.List(fields.String(), required=True)
    scopes_supported = fields.List(fields.String(), required=True)
    service_documentation = fields.String(required=True)


class OpenIdConfigurationSchema(AuthorizationServerMetadataSchema):
    """The same facts, and the claims of access tokens; no id_token, so no ``id_token_*``."""

    claims_supported = fields.List(fields.String(), required=True)


ISSUER = "https://auth.example.com"
SERVER_METADATA = {
    "issuer": ISSUER,
    "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
    "token_endpoint": f"{ISSUER}/oauth2/token",
    "introspection_endpoint": f"{ISSUER}/oauth2/introspect",
    "revocation_endpoint": f"{ISSUER}/oauth2/revoke",
    "grant_types_supported": ["client_credentials"],
    "response_types_supported": [],
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    "scopes_supported": ["introspect", "orders:read"],
    "service_documentation": f"{ISSUER}/apidocs/",
}

# --- the tables -------------------------------------------------------------------------------

#: The probes and metrics: Flask endpoint -> its operation.
PROBES: dict[str, Op | dict[str, Op]] = {
    "health.live": Op(
        "Liveness: the process serves",
        TAG,
        LiveSchema,
        response_example={"status": "ok"},
        no_store=False,
    ),
    "health.health": Op(
        "Readiness: database, Redis and broker",
        TAG,
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
        TAG,
        {"type": "string"},
        media_type="text/plain",
        description="Prometheus text format. With `METRICS_TOKEN` set, it needs "
        "`Authorization: Bearer <METRICS_TOKEN>` (not an access token).",
        errors={401: ("authorization_required",)},
        no_store=False,
        response_example="# TYPE auth_logins_total counter\n"
        'auth_logins_total{result="success"} 3.0\n',
    ),
}

#: Key discovery for other services: Flask endpoint -> its operation.
DISCOVERY: dict[str, Op | dict[str, Op]] = {
    "wellknown.jwks": Op(
        "Public signing keys (JWKS, RFC 7517)",
        TAG,
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
    "wellknown.oauth_authorization_server": Op(
        "OAuth 2.0 authorization server metadata (RFC 8414)",
        TAG,
        AuthorizationServerMetadataSchema,
        description="Where services get tokens, introspect and revoke them. Cached 5 minutes.",
        no_store=False,
        response_example=SERVER_METADATA,
    ),
    "wellknown.openid_configuration": Op(
        "Discovery metadata for libraries that look here",
        TAG,
        OpenIdConfigurationSchema,
        description="The RFC 8414 facts and `claims_supported`. Not an OpenID Provider: no "
        "id_token, no userinfo.",
        no_store=False,
        response_example={**SERVER_METADATA, "claims_supported": list(ACCESS_TOKEN_CLAIMS)},
    ),
}
