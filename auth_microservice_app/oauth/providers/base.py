"""The provider contract, the identity a provider vouches for, and what providers share.

A provider implements :class:`OAuthProvider` and nothing else: it builds the authorization URL,
swaps a code for tokens, and turns tokens into a :class:`ProviderIdentity`. Linking rules,
state and sessions live in :mod:`..services`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from ...errors import InvalidLinkToken, UpstreamError

#: The token endpoint's JSON answer (``access_token``, ``id_token``, ...).
Token = dict[str, Any]

#: Token-endpoint errors that mean "this code (or verifier, or redirect_uri) is not good", as
#: opposed to our own misconfiguration or the provider failing.
CODE_REJECTED_ERRORS = frozenset({"invalid_grant", "bad_verification_code"})


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says the user is. ``subject`` is stable; ``email`` may change."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None = None


class MetadataCache:
    """JSON documents (OIDC discovery, JWKS) fetched over HTTP and kept in memory for a while.

    One per app (``app.extensions``); thread-safe; a failed fetch is never cached.
    """

    def __init__(self) -> None:
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, url: str, *, max_age: float, timeout: float) -> dict[str, Any]:
        """The document at ``url``, from memory when younger than ``max_age`` seconds.

        :raises UpstreamError: the provider did not answer with a JSON object.
        """
        with self._lock:
            cached = self._documents.get(url)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        document = fetch_json(url, timeout=timeout)
        if not isinstance(document, dict):
            raise UpstreamError("The sign-in provider answered with an unexpected document.")
        with self._lock:
            self._documents[url] = (time.monotonic(), document)
        return document

    def age(self, url: str) -> float | None:
        """Seconds since ``url`` was fetched, or None when it is not cached."""
        with self._lock:
            cached = self._documents.get(url)
        return None if cached is None else time.monotonic() - cached[0]


@dataclass(frozen=True)
class ProviderContext:
    """What a provider needs from the app: its settings, the shared cache, HTTP limits."""

    config: Mapping[str, Any]
    cache: MetadataCache = field(default_factory=MetadataCache)
    timeout: float = 5.0
    #: Seconds of clock skew tolerated on ``exp``/``iat`` of a provider's id_token.
    clock_skew: int = 60
    #: How long discovery documents and JWKS stay in memory.
    metadata_ttl: float = 3600.0


class OAuthProvider(Protocol):
    """One identity provider. Routes find it by ``name`` in the registry."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    #: Whether native apps may sign in with the provider's id_token (OIDC providers).
    supports_id_token: ClassVar[bool]
    #: Whether the browser comes back with a cross-site form POST (``response_mode=form_post``).
    callback_form_post: ClassVar[bool]

    @classmethod
    def from_config(cls, context: ProviderContext) -> OAuthProvider | None:
        """The provider, or None when its client id is not set (not configured)."""
        ...

    def authorization_url(
        self, state: str, code_verifier: str, *, redirect_uri: str, nonce: str
    ) -> str:
        """Where to send the browser: with ``state``, ``nonce`` and the S256 code challenge."""
        ...

    def exchange_code(self, code: str, code_verifier: str, *, redirect_uri: str) -> Token:
        """Swap an authorization code (and its PKCE verifier) for the provider's tokens.

        :raises InvalidLinkToken: the provider refused the code.
        :raises UpstreamError: the provider failed or answered nonsense.
        """
        ...

    def fetch_identity(
        self,
        token: Token,
        *,
        nonce: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> ProviderIdentity:
        """The identity behind ``token``; ``profile`` is the rest of the callback's parameters.

        :raises TokenInvalid, TokenExpired: an id_token failed verification.
        :raises UpstreamError: the provider failed.
        """
        ...

    def verify_id_token(self, id_token: str, *, nonce: str | None = None) -> ProviderIdentity:
        """The identity in an id_token a native app obtained itself.

        :raises TokenInvalid, TokenExpired: signature, ``iss``, ``aud``, ``exp`` or ``nonce``.
        :raises ValidationFailed: the provider issues no id_tokens.
        """
        ...


class CodeFlowProvider:
    """The authorization-code flow with PKCE (S256) that every provider runs.

    A subclass names its endpoints (``authorization_endpoint``, ``token_endpoint``) and may add
    query parameters to the authorization request (``authorization_params``) or send another
    client secret to the token endpoint (``token_request_secret``); it reads the identity itself
    (``fetch_identity``, ``verify_id_token``).
    """

    scope: ClassVar[str]
    #: How the token endpoint authenticates us (None: Authlib's default, client_secret_basic).
    token_endpoint_auth_method: ClassVar[str | None] = None

    def __init__(
        self, context: ProviderContext, *, client_id: str, client_secret: str | None
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = context.timeout

    def authorization_endpoint(self) -> str:
        raise NotImplementedError

    def token_endpoint(self) -> str:
        raise NotImplementedError

    def authorization_params(self, nonce: str) -> dict[str, str]:
        """Extra query parameters of the authorization request (``nonce`` for OIDC)."""
        return {}

    def token_request_secret(self) -> str | None:
        """The client secret sent with a token request."""
        return self.client_secret

    def _session(self, redirect_uri: str, client_secret: str | None) -> Any:
        options: dict[str, Any] = {}
        if self.token_endpoint_auth_method:
            options["token_endpoint_auth_method"] = self.token_endpoint_auth_method
        return oauth_session(
            client_id=self.client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            scope=self.scope,
            default_timeout=self.timeout,
            **options,
        )

    def authorization_url(
        self, state: str, code_verifier: str, *, redirect_uri: str, nonce: str
    ) -> str:
        url, _ = self._session(redirect_uri, self.client_secret).create_authorization_url(
            self.authorization_endpoint(),
            state=state,
            code_verifier=code_verifier,
            **self.authorization_params(nonce),
        )
        return str(url)

    def exchange_code(self, code: str, code_verifier: str, *, redirect_uri: str) -> Token:
        return exchange_authorization_code(
            self._session(redirect_uri, self.token_request_secret()),
            self.token_endpoint(),
            code=code,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
        )


def fetch_json(url: str, *, timeout: float, headers: Mapping[str, str] | None = None) -> Any:
    """GET ``url`` and parse its JSON.

    :raises UpstreamError: network failure, an error status, or a body that is not JSON.
    """
    try:
        response = requests.get(url, timeout=timeout, headers=dict(headers or {}))
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError):
        raise UpstreamError("The sign-in provider could not be reached.") from None


def oauth_session(**kwargs: Any) -> Any:
    """An Authlib OAuth 2 client session that always uses PKCE with S256."""
    return OAuth2Session(code_challenge_method="S256", **kwargs)


def exchange_authorization_code(
    session: Any, token_url: str, *, code: str, code_verifier: str, redirect_uri: str
) -> Token:
    """Run the authorization-code grant with the PKCE verifier on an Authlib session (closed
    afterwards).

    :raises InvalidLinkToken: the provider refused the code, verifier or redirect URI.
    :raises UpstreamError: the provider failed, or refused us (client credentials).
    """
    try:
        with session:
            token = session.fetch_token(
                token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
            )
    except OAuthError as error:
        if error.error in CODE_REJECTED_ERRORS:
            raise InvalidLinkToken("The provider refused the authorization code.") from None
        raise UpstreamError("The sign-in provider refused the token request.") from None
    except (requests.RequestException, ValueError):
        raise UpstreamError("The sign-in provider could not be reached.") from None
    if not isinstance(token, Mapping) or not token.get("access_token"):
        raise UpstreamError("The sign-in provider answered without an access token.")
    return dict(token)


def claim_is_true(value: Any) -> bool:
    """OIDC booleans: Apple (and old Google tokens) send ``"true"`` as a string."""
    return value is True or (isinstance(value, str) and value.lower() == "true")
