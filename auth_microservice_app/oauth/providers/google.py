"""Sign in with Google: OpenID Connect with discovery, PKCE (S256), nonce, a verified id_token."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import ClassVar

from .oidc import OpenIDProvider

GOOGLE_ISSUER = "https://accounts.google.com"


class GoogleProvider(OpenIDProvider):
    """Google as an OpenID provider (``GOOGLE_*`` settings); everything is the OIDC default.

    ``GOOGLE_EXTRA_AUDIENCES`` holds the iOS/Android client ids of native apps;
    ``email_verified`` is Google's own claim.
    """

    name: ClassVar[str] = "google"
    display_name: ClassVar[str] = "Google"
    config_prefix: ClassVar[str] = "GOOGLE"
    issuer_aliases: ClassVar[Mapping[str, Collection[str]]] = {
        GOOGLE_ISSUER: ("accounts.google.com",)
    }
