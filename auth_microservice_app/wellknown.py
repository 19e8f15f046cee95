"""Discovery for other services: the JWKS (served from memory, with ETag) and its metadata."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from .identity.tokens import ACCESS_TOKEN_CLAIMS, key_ring

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")
JWKS_MAX_AGE = 300


@bp.get("/jwks.json")
def jwks() -> Response:
    ring = key_ring()
    etag = f'"{ring.jwks_etag}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={JWKS_MAX_AGE}"}
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    return Response(ring.jwks_json, mimetype="application/json", headers=headers)


@bp.get("/openid-configuration")
def openid_configuration() -> Response:
    issuer = current_app.config["JWT_ISSUER"].rstrip("/")
    response = jsonify(
        issuer=issuer,
        jwks_uri=f"{issuer}/.well-known/jwks.json",
        id_token_signing_alg_values_supported=key_ring().algorithms,
        token_endpoint=f"{issuer}/api/v1/auth/login",
        revocation_endpoint=f"{issuer}/api/v1/auth/revoke",
        userinfo_endpoint=f"{issuer}/api/v1/auth/me",
        claims_supported=list(ACCESS_TOKEN_CLAIMS),
    )
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return response
