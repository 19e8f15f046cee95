"""Authlib's authorization server, wired to our clients, tokens and revocation.

Authlib parses the requests, authenticates the client (``client_secret_basic`` or
``client_secret_post``), runs the client-credentials grant and shapes every answer and error
as RFC 6749, 7009 and 7662 say (``Cache-Control: no-store``, ``WWW-Authenticate`` on a 401).
What is ours: the client store (:mod:`..identity.clients`), the token (an RFC 9068 JWT from
:mod:`..identity.tokens`), the scope rule (a request may only narrow the client's scopes) and
what introspection and revocation mean (:mod:`..identity.introspection`, ``.revocation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidRequestError,
    InvalidScopeError,
    scope_to_list,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, current_app

from .. import audit
from ..audit import Event
from ..extensions import db
from ..identity import clients, revocation, tokens
from ..identity.introspection import introspect
from ..utils.security import new_token_id

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
GRANT_TYPES = ["client_credentials"]


class ServiceClientAdapter(ClientMixin):
    """A service client as Authlib sees it: confidential, client credentials only."""

    def __init__(self, record: clients.ClientRecord) -> None:
        self.record = record

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        requested = scope_to_list(scope) if scope else sorted(self.record.scopes)
        return " ".join(item for item in requested if item in self.record.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return self.record.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES


#: Stands in for a client that does not exist (or is disabled): its secret never matches, so an
#: unknown client id fails exactly like a wrong secret (no enumeration of client ids).
UNKNOWN = clients.ClientRecord(
    client_id="",
    name="",
    scopes=frozenset(),
    secret_hash="0" * 64,
    previous_secret_hash=None,
    previous_secret_expires_at=None,
    last_used_at=None,
)


def query_client(client_id: str) -> ServiceClientAdapter:
    return ServiceClientAdapter(clients.find_usable(client_id) or UNKNOWN)


class ScopedClientCredentials(ClientCredentialsGrant):
    """RFC 6749 §4.4; asking for a scope the client does not hold is ``invalid_scope``."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        requested = set(scope_to_list(self.request.payload.scope) or [])
        if not requested <= self.request.client.record.scopes:
            raise InvalidScopeError(description="The client may not ask for this scope.")

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        # no scope asked: every scope of the client (RFC 6749 §3.3 lets the server choose)
        scope = self.request.client.get_allowed_scope(self.request.payload.scope)
        token = self.generate_token(scope=scope, include_refresh_token=False)
        clients.touch(self.request.client.record)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def generate_service_token(
    grant_type: str,
    client: ServiceClientAdapter,
    user: Any = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = False,
) -> dict[str, Any]:
    ttl = int(current_app.config["SERVICE_TOKEN_EXPIRES"])
    access_token = tokens.encode_service(
        client_id=client.get_client_id(),
        scope=scope or "",
        jti=new_token_id(),
        issued_at=tokens.now(),
        ttl=ttl,
    )
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope or "",
    }


class UnsupportedTokenType(OAuth2Error):
    """RFC 7009 §2.2.1, a 400 (Authlib's own is a 401, which reads as a client failure)."""

    error = "unsupported_token_type"
    status_code = 400
    description = "token_type_hint must be access_token or refresh_token."


class InsufficientScope(OAuth2Error):
    error = "insufficient_scope"
    status_code = 403
    description = f"The client needs the {clients.INTROSPECT} scope to introspect tokens."


class Introspection(IntrospectionEndpoint):
    """RFC 7662 for clients holding the ``introspect`` scope; the answer is the kernel's."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def check_params(self, request: Any, client: Any) -> None:
        # the hint is only a hint (RFC 7662 §2.1), an unknown one included: the token says what
        # it is
        if not request.form.get("token"):
            raise InvalidRequestError(description="The token parameter is missing.")

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        client = self.authenticate_endpoint_client(request)
        self.check_params(request, client)
        if clients.INTROSPECT not in client.record.scopes:
            raise InsufficientScope()
        body = introspect(request.form["token"])
        return 200, body, [("Content-Type", "application/json"), *NO_STORE]


NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


@dataclass(frozen=True)
class ServiceToken:
    """A valid service token of ours, as Authlib's revocation endpoint handles it."""

    claims: dict[str, Any]

    def check_client(self, client: ServiceClientAdapter) -> bool:
        return bool(self.claims.get("client_id") == client.get_client_id())


class Revocation(RevocationEndpoint):
    """RFC 7009: a client revokes a token it was issued; an unknown token is a 200 too.

    Users revoke their own tokens at ``/api/v1/auth/revoke``; a token of another client (a
    user's token included) is ``invalid_grant``, as Authlib answers.
    """

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def check_params(self, request: Any, client: Any) -> None:
        if not request.form.get("token"):
            raise InvalidRequestError(description="The token parameter is missing.")
        hint = request.form.get("token_type_hint")
        if hint and hint not in self.SUPPORTED_TOKEN_TYPES:
            raise UnsupportedTokenType()

    def query_token(self, token_string: str, token_type_hint: str | None) -> ServiceToken | None:
        claims = tokens.decode_resource_token(token_string)
        return ServiceToken(claims) if claims is not None else None

    def revoke_token(self, token: ServiceToken, request: Any) -> None:
        claims = token.claims
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        revocation.record_token_revocation(
            str(claims["jti"]),
            None,
            expires_at,
            client_id=str(claims["client_id"]),
        )
        db.session.commit()
        revocation.publish(jtis=[(str(claims["jti"]), expires_at)])
        audit.record(Event.TOKEN_REVOKED, client_id=claims["client_id"], kind="service")


def init_app(app: Flask) -> AuthorizationServer:
    """This app's authorization server (one per app: tests build several)."""
    server = AuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=lambda token, request: None)
    server.register_grant(ScopedClientCredentials)
    server.register_token_generator("client_credentials", generate_service_token)
    server.register_endpoint(Introspection)
    server.register_endpoint(Revocation)
    app.extensions["oauth2_server"] = server
    return server
