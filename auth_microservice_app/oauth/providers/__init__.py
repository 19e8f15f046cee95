"""The provider registry: name -> class. A provider without a client id is not configured."""

from __future__ import annotations

from .apple import AppleProvider
from .base import MetadataCache, OAuthProvider, ProviderContext, ProviderIdentity, Token
from .github import GitHubProvider
from .google import GoogleProvider

REGISTRY: dict[str, type[OAuthProvider]] = {
    GoogleProvider.name: GoogleProvider,
    GitHubProvider.name: GitHubProvider,
    AppleProvider.name: AppleProvider,
}


def load_provider(name: str, context: ProviderContext) -> OAuthProvider | None:
    """The configured provider called ``name``, or None (unknown or not configured)."""
    cls = REGISTRY.get(name)
    return cls.from_config(context) if cls is not None else None


def configured_providers(context: ProviderContext) -> list[OAuthProvider]:
    """Every configured provider, in registry order."""
    providers = (cls.from_config(context) for cls in REGISTRY.values())
    return [provider for provider in providers if provider is not None]


__all__ = [
    "REGISTRY",
    "AppleProvider",
    "GitHubProvider",
    "GoogleProvider",
    "MetadataCache",
    "OAuthProvider",
    "ProviderContext",
    "ProviderIdentity",
    "Token",
    "configured_providers",
    "load_provider",
]
