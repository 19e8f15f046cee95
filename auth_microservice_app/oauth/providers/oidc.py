"""OpenID Connect: the id_token verifier and the provider base that Google and Apple extend.

``OpenIDProvider`` is a complete provider for any OpenID Connect issuer with discovery (a
generic one for Microsoft, Okta or Keycloak needs only a subclass naming its settings);
Google and Apple override its hooks where they differ.

An id_token is accepted only when its signature verifies with a key from the provider's JWKS
(found by ``kid``, with the key's own algorithm, asymmetric only), and its ``iss``, ``aud``
(our client id or an extra audience), ``azp`` (when present), ``exp``, ``iat``, ``sub`` and,
when one was sent, ``nonce`` are right.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

import jwt

from ...errors import TokenExpired, TokenInvalid, UpstreamError
from .base import CodeFlowProvider, ProviderContext, ProviderIdentity, Token, claim_is_true

#: Never HS* (a public key as a shared secret) and never ``none``.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: An unknown ``kid`` re-fetches the JWKS (the provider rotated its keys), but not more often
#: than this: random kids must not turn us into a proxy that hammers the provider.
JWKS_REFETCH_INTERVAL = 30.0


class OpenIDClient:
    """Discovery, JWKS and id_token verification for one OIDC provider and client."""

    def __init__(
        self,
        context: ProviderContext,
        *,
        provider: str,
        discovery_url: str,
        audiences: Collection[str],
        issuer_aliases: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.context = context
        self.provider = provider
        self.discovery_url = discovery_url
        self.audiences = list(audiences)
        #: Other spellings of an issuer that the provider documents (Google has two).
        self.issuer_aliases = dict(issuer_aliases or {})

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached).

        :raises UpstreamError: unreachable, or not a discovery document.
        """
        document = self.context.cache.get(
            self.discovery_url, max_age=self.context.metadata_ttl, timeout=self.context.timeout
        )
        required = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(document, dict) or not all(
            isinstance(document.get(name), str) for name in required
        ):
            raise UpstreamError("The sign-in provider's discovery document is invalid.")
        return document

    def endpoint(self, name: str) -> str:
        value: str = self.metadata()[name]
        return value

    def verify(self, id_token: str, *, nonce: str | None) -> dict[str, Any]:
        """The claims of a valid id_token.

        :raises TokenExpired: past ``exp`` (beyond the allowed clock skew).
        :raises TokenInvalid: anything else wrong.
        :raises UpstreamError: the provider's discovery or JWKS could not be fetched.
        """
        metadata = self.metadata()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise TokenInvalid("The identity token is invalid.") from None
        algorithm = header.get("alg")
        if algorithm not in self._algorithms(metadata):
            raise TokenInvalid("The identity token is invalid.")
        key = self._key(metadata["jwks_uri"], header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key,
                algorithms=[str(algorithm)],
                audience=self.audiences,
                issuer=[metadata["issuer"], *self.issuer_aliases.get(metadata["issuer"], ())],
                leeway=self.context.clock_skew,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("The identity token has expired.") from None
        except jwt.PyJWTError:
            raise TokenInvalid("The identity token is invalid.") from None
        self._check_claims(claims, nonce)
        return claims

    def identity(self, claims: dict[str, Any], *, name: str | None = None) -> ProviderIdentity:
        email = claims.get("email")
        return ProviderIdentity(
            provider=self.provider,
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) and email else None,
            email_verified=isinstance(email, str) and claim_is_true(claims.get("email_verified")),
            name=name or (claims["name"] if isinstance(claims.get("name"), str) else None),
        )

    def _check_claims(self, claims: dict[str, Any], nonce: str | None) -> None:
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenInvalid("The identity token is invalid.")
        # Several audiences: the party it was issued to must be one of ours (OIDC Core 3.1.3.7).
        azp = claims.get("azp")
        if azp is not None and azp not in self.audiences:
            raise TokenInvalid("The identity token is invalid.")
        if nonce is not None:
            presented = claims.get("nonce")
            if not isinstance(presented, str) or not hmac.compare_digest(
                presented.encode(), nonce.encode()
            ):
                raise TokenInvalid("The identity token's nonce does not match.")

    @staticmethod
    def _algorithms(metadata: dict[str, Any]) -> set[str]:
        advertised = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        return {alg for alg in advertised if alg in ASYMMETRIC_ALGORITHMS}

    def _key(self, jwks_uri: str, kid: Any) -> jwt.PyJWK:
        key = self._find_key(self._jwks(jwks_uri, max_age=self.context.metadata_ttl), kid)
        if key is None:
            age = self.context.cache.age(jwks_uri)
            if age is None or age >= JWKS_REFETCH_INTERVAL:
                key = self._find_key(self._jwks(jwks_uri, max_age=0), kid)
        if key is None:
            raise TokenInvalid("The identity token is invalid.")
        return key

    def _jwks(self, jwks_uri: str, *, max_age: float) -> jwt.PyJWKSet:
        document = self.context.cache.get(jwks_uri, max_age=max_age, timeout=self.context.timeout)
        try:
            return jwt.PyJWKSet.from_dict(document)
        except (jwt.PyJWTError, AttributeError, TypeError):
            raise UpstreamError("The sign-in provider's keys are invalid.") from None

    @staticmethod
    def _find_key(keys: jwt.PyJWKSet, kid: Any) -> jwt.PyJWK | None:
        signing = [key for key in keys.keys if key.public_key_use in (None, "sig")]
        if kid is None:
            return signing[0] if len(signing) == 1 else None
        return next((key for key in signing if key.key_id == kid), None)


class OpenIDProvider(CodeFlowProvider):
    """An OpenID provider: discovery, PKCE (S256), nonce, and the identity from the id_token only.

    Endpoints and keys come from ``<PREFIX>_DISCOVERY_URL`` (cached). The id_token's signature
    (the provider's JWKS), ``iss``, ``aud`` (``<PREFIX>_CLIENT_ID``, plus
    ``<PREFIX>_EXTRA_AUDIENCES`` for the client ids of native apps), ``exp`` and ``nonce`` are
    checked by ``OpenIDClient``. Subclasses set the class attributes and override the hooks
    ``authorization_params``, ``token_request_secret`` and ``profile_name``.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    #: The settings' prefix: ``GOOGLE`` reads ``GOOGLE_CLIENT_ID``, ``GOOGLE_DISCOVERY_URL``...
    config_prefix: ClassVar[str]
    supports_id_token: ClassVar[bool] = True
    callback_form_post: ClassVar[bool] = False
    scope: ClassVar[str] = "openid email profile"
    #: Other spellings of the issuer that the provider documents.
    issuer_aliases: ClassVar[Mapping[str, Collection[str]]] = {}

    def __init__(
        self,
        context: ProviderContext,
        *,
        client_id: str,
        client_secret: str | None,
        discovery_url: str,
        extra_audiences: list[str],
    ) -> None:
        super().__init__(context, client_id=client_id, client_secret=client_secret)
        self.oidc = OpenIDClient(
            context,
            provider=self.name,
            discovery_url=discovery_url,
            audiences=[client_id, *extra_audiences],
            issuer_aliases=self.issuer_aliases,
        )

    @classmethod
    def client_settings(cls, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """The constructor's keyword arguments from the settings; None when not configured."""
        prefix = cls.config_prefix
        if not config.get(f"{prefix}_CLIENT_ID"):
            return None
        return {
            "client_id": config[f"{prefix}_CLIENT_ID"],
            "client_secret": config.get(f"{prefix}_CLIENT_SECRET"),
            "discovery_url": config[f"{prefix}_DISCOVERY_URL"],
            "extra_audiences": list(config.get(f"{prefix}_EXTRA_AUDIENCES") or []),
        }

    @classmethod
    def from_config(cls, context: ProviderContext) -> OpenIDProvider | None:
        settings = cls.client_settings(context.config)
        return None if settings is None else cls(context, **settings)

    # --- hooks -----------------------------------------------------------------------------

    def authorization_endpoint(self) -> str:
        return self.oidc.endpoint("authorization_endpoint")

    def token_endpoint(self) -> str:
        return self.oidc.endpoint("token_endpoint")

    def authorization_params(self, nonce: str) -> dict[str, str]:
        return {"nonce": nonce}

    def profile_name(self, profile: Mapping[str, Any]) -> str | None:
        """A display name from what the callback carried besides the code (None: the id_token's)."""
        return None

    # --- the identity ----------------------------------------------------------------------

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
        return self.oidc.identity(claims, name=self.profile_name(profile or {}))

    def verify_id_token(self, id_token: str, *, nonce: str | None = None) -> ProviderIdentity:
        return self.oidc.identity(self.oidc.verify(id_token, nonce=nonce))
