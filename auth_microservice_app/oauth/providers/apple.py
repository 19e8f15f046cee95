"""Sign in with Apple: OIDC with a ``form_post`` callback and an ES256 JWT as client secret."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import jwt

from ...errors import TokenInvalid, UpstreamError
from .base import (
    ProviderContext,
    ProviderIdentity,
    Token,
    exchange_authorization_code,
    oauth_session,
)
from .oidc import OpenIDClient

#: The audience of the client-secret JWT, whatever discovery URL is configured (Apple's rule).
APPLE_AUDIENCE = "https://appleid.apple.com"
#: Apple accepts up to six months; a few minutes is all one token request needs.
CLIENT_SECRET_TTL = 300
MAX_NAME_LENGTH = 200


class AppleProvider:
    """Apple as an OpenID provider.

    The browser comes back with a form POST (``response_mode=form_post``). The client secret is
    an ES256 JWT signed with ``APPLE_PRIVATE_KEY`` (header ``kid`` = ``APPLE_KEY_ID``; ``iss`` =
    ``APPLE_TEAM_ID``, ``sub`` = ``APPLE_CLIENT_ID``, ``aud`` = ``https://appleid.apple.com``),
    made fresh for each token request. The identity comes from the id_token, verified with
    Apple's JWKS; ``aud`` may also be one of ``APPLE_EXTRA_AUDIENCES`` (app bundle ids, for
    native apps). Apple sends the user's name only once, on the first authorization, as the
    ``user`` JSON form field: it is read from there and never from the (unsigned) email in it.
    """

    name: ClassVar[str] = "apple"
    display_name: ClassVar[str] = "Apple"
    supports_id_token: ClassVar[bool] = True
    callback_form_post: ClassVar[bool] = True
    scope = "name email"

    def __init__(
        self,
        context: ProviderContext,
        *,
        client_id: str,
        team_id: str | None,
        key_id: str | None,
        private_key: str | None,
        discovery_url: str,
        extra_audiences: list[str],
    ) -> None:
        self.client_id = client_id
        self.team_id = team_id
        self.key_id = key_id
        self.private_key = private_key
        self.timeout = context.timeout
        self.oidc = OpenIDClient(
            context,
            provider=self.name,
            discovery_url=discovery_url,
            audiences=[client_id, *extra_audiences],
        )

    @classmethod
    def from_config(cls, context: ProviderContext) -> AppleProvider | None:
        config = context.config
        if not config.get("APPLE_CLIENT_ID"):
            return None
        return cls(
            context,
            client_id=config["APPLE_CLIENT_ID"],
            team_id=config.get("APPLE_TEAM_ID"),
            key_id=config.get("APPLE_KEY_ID"),
            private_key=config.get("APPLE_PRIVATE_KEY"),
            discovery_url=config["APPLE_DISCOVERY_URL"],
            extra_audiences=list(config.get("APPLE_EXTRA_AUDIENCES") or []),
        )

    def client_secret(self) -> str:
        """A short-lived ES256 JWT that authenticates us at Apple's token endpoint.

        :raises UpstreamError: the team id, key id or private key is missing or unusable.
        """
        if not (self.team_id and self.key_id and self.private_key):
            raise UpstreamError("Sign in with Apple is not fully configured.")
        issued = int(time.time())
        claims = {
            "iss": self.team_id,
            "iat": issued,
            "exp": issued + CLIENT_SECRET_TTL,
            "aud": APPLE_AUDIENCE,
            "sub": self.client_id,
        }
        try:
            return jwt.encode(
                claims, self.private_key, algorithm="ES256", headers={"kid": self.key_id}
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            raise UpstreamError("Sign in with Apple is not fully configured.") from None

    def _session(self, redirect_uri: str, client_secret: str | None = None) -> Any:
        return oauth_session(
            client_id=self.client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            scope=self.scope,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
            default_timeout=self.timeout,
        )

    def authorization_url(
        self, state: str, code_verifier: str, *, redirect_uri: str, nonce: str
    ) -> str:
        url, _ = self._session(redirect_uri).create_authorization_url(
            self.oidc.endpoint("authorization_endpoint"),
            state=state,
            code_verifier=code_verifier,
            nonce=nonce,
            # Apple requires form_post whenever name or email is asked for.
            response_mode="form_post",
        )
        return str(url)

    def exchange_code(self, code: str, code_verifier: str, *, redirect_uri: str) -> Token:
        return exchange_authorization_code(
            self._session(redirect_uri, self.client_secret()),
            self.oidc.endpoint("token_endpoint"),
            code=code,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
        )

    def fetch_identity(
        self,
        token: Token,
        *,
        nonce: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> ProviderIdentity:
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise TokenInvalid("The provider returned no identity token.")
        claims = self.oidc.verify(id_token, nonce=nonce)
        return self.oidc.identity(claims, name=name_from_user_field((profile or {}).get("user")))

    def verify_id_token(self, id_token: str, *, nonce: str | None = None) -> ProviderIdentity:
        return self.oidc.identity(self.oidc.verify(id_token, nonce=nonce))


def name_from_user_field(raw: Any) -> str | None:
    """``"Ada Lovelace"`` from Apple's ``user`` form field; None when absent or malformed.

    The field is ``{"name": {"firstName": ..., "lastName": ...}, "email": ...}``, sent on the
    first authorization only.
    """
    if not isinstance(raw, str) or not raw or len(raw) > 4096:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, dict):
        return None
    parts = (name.get("firstName"), name.get("lastName"))
    full = " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
    return full[:MAX_NAME_LENGTH] or None
