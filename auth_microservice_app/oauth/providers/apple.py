"""Sign in with Apple: OIDC with a ``form_post`` callback and an ES256 JWT as client secret."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import jwt

from ...errors import UpstreamError
from .base import ProviderContext
from .oidc import OpenIDProvider

#: The audience of the client-secret JWT, whatever discovery URL is configured (Apple's rule).
APPLE_AUDIENCE = "https://appleid.apple.com"
#: Apple accepts up to six months; a few minutes is all one token request needs.
CLIENT_SECRET_TTL = 300
MAX_NAME_LENGTH = 200


class AppleProvider(OpenIDProvider):
    """Apple as an OpenID provider (``APPLE_*`` settings).

    The browser comes back with a form POST (``response_mode=form_post``). The client secret is
    an ES256 JWT signed with ``APPLE_PRIVATE_KEY`` (header ``kid`` = ``APPLE_KEY_ID``; ``iss`` =
    ``APPLE_TEAM_ID``, ``sub`` = ``APPLE_CLIENT_ID``, ``aud`` = ``https://appleid.apple.com``),
    made fresh for each token request. ``aud`` of the id_token may also be one of
    ``APPLE_EXTRA_AUDIENCES`` (app bundle ids, for native apps). Apple sends the user's name
    only once, on the first authorization, as the ``user`` JSON form field: it is read from
    there and never from the (unsigned) email in it.
    """

    name: ClassVar[str] = "apple"
    display_name: ClassVar[str] = "Apple"
    config_prefix: ClassVar[str] = "APPLE"
    callback_form_post: ClassVar[bool] = True
    scope: ClassVar[str] = "name email"
    token_endpoint_auth_method: ClassVar[str | None] = "client_secret_post"  # noqa: S105

    def __init__(
        self,
        context: ProviderContext,
        *,
        team_id: str | None,
        key_id: str | None,
        private_key: str | None,
        **settings: Any,
    ) -> None:
        super().__init__(context, **settings)
        self.team_id = team_id
        self.key_id = key_id
        self.private_key = private_key

    @classmethod
    def from_config(cls, context: ProviderContext) -> AppleProvider | None:
        settings = cls.client_settings(context.config)
        if settings is None:
            return None
        config = context.config
        settings["client_secret"] = None  # made per request from the private key
        return cls(
            context,
            team_id=config.get("APPLE_TEAM_ID"),
            key_id=config.get("APPLE_KEY_ID"),
            private_key=config.get("APPLE_PRIVATE_KEY"),
            **settings,
        )

    def signed_client_secret(self) -> str:
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

    def authorization_params(self, nonce: str) -> dict[str, str]:
        # Apple requires form_post whenever name or email is asked for.
        return {**super().authorization_params(nonce), "response_mode": "form_post"}

    def token_request_secret(self) -> str | None:
        return self.signed_client_secret()

    def profile_name(self, profile: Mapping[str, Any]) -> str | None:
        return name_from_user_field(profile.get("user"))


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
