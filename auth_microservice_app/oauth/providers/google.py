"""Sign in with Google: OpenID Connect with discovery, PKCE (S256), nonce, a verified id_token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ...errors import TokenInvalid
from .base import (
    ProviderContext,
    ProviderIdentity,
    Token,
    exchange_authorization_code,
    oauth_session,
)
from .oidc import OpenIDClient

GOOGLE_ISSUER = "https://accounts.google.com"


class GoogleProvider:
    """Google as an OpenID provider.

    Endpoints and keys come from ``GOOGLE_DISCOVERY_URL`` (cached). The identity is read from the
    id_token only: its signature (Google's JWKS), ``iss``, ``aud`` (``GOOGLE_CLIENT_ID``, plus
    ``GOOGLE_EXTRA_AUDIENCES`` for the iOS/Android client ids of native apps), ``exp`` and
    ``nonce`` are checked. ``email_verified`` is Google's own claim.
    """

    name: ClassVar[str] = "google"
    display_name: ClassVar[str] = "Google"
    supports_id_token: ClassVar[bool] = True
    callback_form_post: ClassVar[bool] = False
    scope = "openid email profile"

    def __init__(
        self,
        context: ProviderContext,
        *,
        client_id: str,
        client_secret: str | None,
        discovery_url: str,
        extra_audiences: list[str],
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = context.timeout
        self.oidc = OpenIDClient(
            context,
            provider=self.name,
            discovery_url=discovery_url,
            audiences=[client_id, *extra_audiences],
            issuer_aliases={GOOGLE_ISSUER: ("accounts.google.com",)},
        )

    @classmethod
    def from_config(cls, context: ProviderContext) -> GoogleProvider | None:
        config = context.config
        if not config.get("GOOGLE_CLIENT_ID"):
            return None
        return cls(
            context,
            client_id=config["GOOGLE_CLIENT_ID"],
            client_secret=config.get("GOOGLE_CLIENT_SECRET"),
            discovery_url=config["GOOGLE_DISCOVERY_URL"],
            extra_audiences=list(config.get("GOOGLE_EXTRA_AUDIENCES") or []),
        )

    def _session(self, redirect_uri: str) -> Any:
        return oauth_session(
            client_id=self.client_id,
            client_secret=self.client_secret,
            redirect_uri=redirect_uri,
            scope=self.scope,
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
        )
        return str(url)

    def exchange_code(self, code: str, code_verifier: str, *, redirect_uri: str) -> Token:
        return exchange_authorization_code(
            self._session(redirect_uri),
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
        return self.verify_id_token(id_token, nonce=nonce)

    def verify_id_token(self, id_token: str, *, nonce: str | None = None) -> ProviderIdentity:
        return self.oidc.identity(self.oidc.verify(id_token, nonce=nonce))
