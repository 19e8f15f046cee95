"""Which providers are configured, and what every OAuth flow checks first: the provider by
name, our callback URL, the client's redirect URI on the allow-list.
"""

from __future__ import annotations

import logging

from flask import current_app

from ..errors import (
    BadRequest,
    NotFound,
)
from .providers import (
    MetadataCache,
    OAuthProvider,
    ProviderContext,
    configured_providers,
    load_provider,
)

logger = logging.getLogger(__name__)


def _context() -> ProviderContext:
    app = current_app
    cache: MetadataCache = app.extensions.setdefault("oauth_metadata", MetadataCache())
    config = app.config
    return ProviderContext(
        config=config,
        cache=cache,
        timeout=float(config["OAUTH_HTTP_TIMEOUT"]),
        clock_skew=int(config["OAUTH_CLOCK_SKEW"]),
        metadata_ttl=float(config["OAUTH_METADATA_CACHE_TTL"]),
    )


def list_providers() -> list[OAuthProvider]:
    """The configured providers (a provider without a client id is not configured)."""
    return configured_providers(_context())


def get_provider(name: str) -> OAuthProvider:
    """The configured provider called ``name``.

    :raises NotFound: unknown, or not configured.
    """
    provider = load_provider(name, _context())
    if provider is None:
        raise NotFound("Unknown sign-in provider.")
    return provider


def callback_url(provider: OAuthProvider) -> str:
    """Our callback for ``provider``, as registered with it."""
    base = str(current_app.config["OAUTH_CALLBACK_BASE_URL"]).rstrip("/")
    return f"{base}/api/v1/oauth/{provider.name}/callback"


def check_redirect_uri(redirect_uri: str | None) -> str:
    """``redirect_uri`` if it is on ``OAUTH_REDIRECT_ALLOWLIST`` (exact match).

    :raises BadRequest: missing or not allowed (an open redirect would leak one-time codes).
    """
    if not redirect_uri:
        raise BadRequest(
            "redirect_uri is required.",
            details={"redirect_uri": ["Missing data for required field."]},
        )
    if redirect_uri not in current_app.config["OAUTH_REDIRECT_ALLOWLIST"]:
        raise BadRequest(
            "redirect_uri is not allowed.",
            details={"redirect_uri": ["Not on the allow-list of redirect URIs."]},
        )
    return redirect_uri


# --- the browser flow ------------------------------------------------------------------------
