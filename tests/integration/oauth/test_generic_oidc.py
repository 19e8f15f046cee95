"""The OpenID Connect base is a whole provider: a subclass that names its settings signs in.

What a Microsoft, Okta or Keycloak provider would be: ``OpenIDProvider`` with a prefix and a
name, and nothing else. It runs the code flow (PKCE, nonce, client_secret_basic) against the
loopback OpenID provider and reads a verified identity from the id_token.
"""

from __future__ import annotations

import secrets
from typing import ClassVar

import pytest

from auth_microservice_app.errors import TokenInvalid
from auth_microservice_app.oauth.providers import ProviderContext
from auth_microservice_app.oauth.providers.oidc import OpenIDProvider

from .conftest import CALLBACK, CLIENT_ID, CLIENT_SECRET, OidcProvider, drive_provider, query


class KeycloakProvider(OpenIDProvider):
    name: ClassVar[str] = "keycloak"
    display_name: ClassVar[str] = "Keycloak"
    config_prefix: ClassVar[str] = "KEYCLOAK"


def keycloak(oidc_provider: OidcProvider) -> KeycloakProvider:
    config = {
        "KEYCLOAK_CLIENT_ID": CLIENT_ID,
        "KEYCLOAK_CLIENT_SECRET": CLIENT_SECRET,
        "KEYCLOAK_DISCOVERY_URL": oidc_provider.discovery_url,
    }
    provider = KeycloakProvider.from_config(ProviderContext(config=config))
    assert isinstance(provider, KeycloakProvider)
    return provider


def test_a_subclass_without_its_client_id_is_not_configured():
    assert KeycloakProvider.from_config(ProviderContext(config={})) is None


def test_a_generic_oidc_provider_signs_in_with_pkce_and_nonce(oidc_provider):
    provider = keycloak(oidc_provider)
    state, verifier, nonce = (secrets.token_urlsafe(32) for _ in range(3))
    url = provider.authorization_url(state, verifier, redirect_uri=CALLBACK, nonce=nonce)
    assert query(url)["code_challenge_method"] == "S256"

    back = query(drive_provider(url, stop_at=CALLBACK))
    assert back["state"] == state
    token = provider.exchange_code(back["code"], verifier, redirect_uri=CALLBACK)
    identity = provider.fetch_identity(token, nonce=nonce)

    assert (identity.provider, identity.subject) == ("keycloak", "verified")
    assert identity.email == "vera@example.com"
    assert identity.email_verified is True


def test_a_generic_oidc_provider_refuses_another_flows_nonce(oidc_provider):
    provider = keycloak(oidc_provider)
    state, verifier, nonce = (secrets.token_urlsafe(32) for _ in range(3))
    url = provider.authorization_url(state, verifier, redirect_uri=CALLBACK, nonce=nonce)
    back = query(drive_provider(url, stop_at=CALLBACK))
    token = provider.exchange_code(back["code"], verifier, redirect_uri=CALLBACK)
    with pytest.raises(TokenInvalid):
        provider.fetch_identity(token, nonce=secrets.token_urlsafe(32))
