"""`/oauth2`: thin views over Authlib's authorization server (see :mod:`.server`)."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from flask import Response, current_app

from .blueprint import bp


def _server() -> AuthorizationServer:
    server: AuthorizationServer = current_app.extensions["oauth2_server"]
    return server


@bp.post("/token")
def token() -> Response:
    response: Response = _server().create_token_response()
    return response


@bp.post("/introspect")
def introspect() -> Response:
    response: Response = _server().create_endpoint_response("introspection")
    return response


@bp.post("/revoke")
def revoke() -> Response:
    response: Response = _server().create_endpoint_response("revocation")
    return response
