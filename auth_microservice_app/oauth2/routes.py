"""`/oauth2`: thin views over Authlib's authorization server (see :mod:`.server`)."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from flask import Response, current_app, request

from .. import audit
from ..audit import Event
from .blueprint import bp


def _server() -> AuthorizationServer:
    server: AuthorizationServer = current_app.extensions["oauth2_server"]
    return server


def _audited(response: Response) -> Response:
    if response.status_code == 401:  # a wrong secret, an unknown or a disabled client
        audit.record(Event.CLIENT_AUTH_FAILED, endpoint=request.endpoint)
    return response


@bp.post("/token")
def token() -> Response:
    return _audited(_server().create_token_response())


@bp.post("/introspect")
def introspect() -> Response:
    return _audited(_server().create_endpoint_response("introspection"))


@bp.post("/revoke")
def revoke() -> Response:
    return _audited(_server().create_endpoint_response("revocation"))
