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


class OpenIdConfigurationSchema(Schema):
    issuer = fields.String(required=True)
    jwks_uri = fields.String(required=True)
    id_token_signing_alg_values_supported = fields.List(fields.String(), required=True)
    token_endpoint = fields.String(required=True)
    revocation_endpoint = fields.String(required=True)
    userinfo_endpoint = fields.String(required=True)
    claims_supported = fields.List(fields.String(), required=True)


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
    "wellknown.openid_configuration": Op(
        "Discovery metadata for other services",
        TAG,
        OpenIdConfigurationSchema,
        no_store=False,
        response_example={
            "issuer": "https://auth.example.com",
            "jwks_uri": "https://auth.example.com/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint": "https://auth.example.com/api/v1/auth/login",
            "revocation_endpoint": "https://auth.example.com/api/v1/auth/revoke",
            "userinfo_endpoint": "https://auth.example.com/api/v1/auth/me",
            "claims_supported": list(ACCESS_TOKEN_CLAIMS),
        },
    ),
}
