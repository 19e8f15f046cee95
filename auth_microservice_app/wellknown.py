"""Discovery for other services: the JWKS (served from memory, with ETag), RFC 8414 metadata."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from .extensions import db
from .identity.clients import INTROSPECT
from .identity.tokens import ACCESS_TOKEN_CLAIMS, key_ring
from .models import ServiceClient
from .oauth2.server import AUTH_METHODS, GRANT_TYPES

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


def _server_metadata() -> dict[str, Any]:
    """RFC 8414: only what is true. No authorization endpoint (users sign in through the
    JSON API, services with client credentials), so no response type, and no id_token."""
    issuer = current_app.config["JWT_ISSUER"].rstrip("/")
    auth_methods = list(AUTH_METHODS)
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/oauth2/token",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "grant_types_supported": list(GRANT_TYPES),
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": _scopes_supported(),
        "service_documentation": f"{issuer}/apidocs/",
    }


def _scopes_supported() -> list[str]:
    """Every scope some client holds, ``introspect`` always (kept a minute per process)."""
    now = time.monotonic()
    cached = _scopes_cache.get("scopes")
    if cached is not None and cached[0] > now:
        return cached[1]
    scopes = {INTROSPECT}
    for row in db.session.execute(
        select(ServiceClient.scopes).where(ServiceClient.deleted_at.is_(None))
    ).scalars():
        scopes.update(row)
    result = sorted(scopes)
    _scopes_cache["scopes"] = (now + SCOPES_CACHE_SECONDS, result)
    return result


_scopes_cache: dict[str, tuple[float, list[str]]] = {}
SCOPES_CACHE_SECONDS = 60.0


def forget_scopes() -> None:
    """Drop the cached ``scopes_supported`` (a new client's scopes show at once)."""
    _scopes_cache.clear()


def _metadata_response(document: dict[str, Any]) -> Response:
    response = jsonify(document)
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return response


@bp.get("/oauth-authorization-server")
def oauth_authorization_server() -> Response:
    return _metadata_response(_server_metadata())


@bp.get("/openid-configuration")
def openid_configuration() -> Response:
    """The same facts for libraries that discover ``issuer`` and ``jwks_uri`` this way, and
    the claims of our access tokens. Not an OpenID Provider: no id_token, no userinfo."""
    return _metadata_response({**_server_metadata(), "claims_supported": list(ACCESS_TOKEN_CLAIMS)})
