"""GitHub: OAuth 2 with PKCE; the user from ``/user``, the email from ``/user/emails``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ...errors import UpstreamError, ValidationFailed
from .base import CodeFlowProvider, ProviderContext, ProviderIdentity, Token, fetch_json

GITHUB_AUTHORIZE_URL = "https://github.com/login/oauth/authorize"
GITHUB_TOKEN_URL = "https://github.com/login/oauth/access_token"  # noqa: S105 - a URL
GITHUB_API_URL = "https://api.github.com"


class GitHubProvider(CodeFlowProvider):
    """GitHub as an OAuth 2 provider (it has no OpenID Connect for users, so no id_token).

    The subject is GitHub's numeric user id (logins can be renamed). The email is the account's
    **primary and verified** address from ``/user/emails``; a public profile email or an
    unverified one is never used, so an identity without one has no email at all.
    """

    name: ClassVar[str] = "github"
    display_name: ClassVar[str] = "GitHub"
    supports_id_token: ClassVar[bool] = False
    callback_form_post: ClassVar[bool] = False
    scope: ClassVar[str] = "read:user user:email"
    token_endpoint_auth_method: ClassVar[str | None] = "client_secret_post"  # noqa: S105

    def __init__(
        self,
        context: ProviderContext,
        *,
        client_id: str,
        client_secret: str | None,
        authorize_url: str,
        token_url: str,
        api_url: str,
    ) -> None:
        super().__init__(context, client_id=client_id, client_secret=client_secret)
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.api_url = api_url.rstrip("/")

    @classmethod
    def from_config(cls, context: ProviderContext) -> GitHubProvider | None:
        config = context.config
        if not config.get("GITHUB_CLIENT_ID"):
            return None
        return cls(
            context,
            client_id=config["GITHUB_CLIENT_ID"],
            client_secret=config.get("GITHUB_CLIENT_SECRET"),
            authorize_url=config.get("GITHUB_AUTHORIZE_URL") or GITHUB_AUTHORIZE_URL,
            token_url=config.get("GITHUB_TOKEN_URL") or GITHUB_TOKEN_URL,
            api_url=config.get("GITHUB_API_URL") or GITHUB_API_URL,
        )

    # GitHub has no nonce (no id_token): state and PKCE protect the flow.
    def authorization_endpoint(self) -> str:
        return self.authorize_url

    def token_endpoint(self) -> str:
        return self.token_url

    def fetch_identity(
        self,
        token: Token,
        *,
        nonce: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> ProviderIdentity:
        user = self._api(token, "/user")
        emails = self._api(token, "/user/emails")
        if not isinstance(user, dict) or not isinstance(user.get("id"), int | str):
            raise UpstreamError("GitHub answered without a user id.")
        name = user.get("name") or user.get("login")
        email = primary_verified_email(emails)
        return ProviderIdentity(
            provider=self.name,
            subject=str(user["id"]),
            email=email,
            email_verified=email is not None,
            name=name if isinstance(name, str) else None,
        )

    def verify_id_token(self, id_token: str, *, nonce: str | None = None) -> ProviderIdentity:
        message = "GitHub does not issue ID tokens: send code, code_verifier and redirect_uri."
        raise ValidationFailed(message, details={"id_token": [message]})

    def _api(self, token: Token, path: str) -> Any:
        return fetch_json(
            self.api_url + path,
            timeout=self.timeout,
            headers={
                "Authorization": f"Bearer {token['access_token']}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )


def primary_verified_email(emails: Any) -> str | None:
    """The address GitHub marks both ``primary`` and ``verified``, else None.

    Secondary verified addresses are ignored too: the primary one is what the user chose as
    theirs, and taking "any verified one" would let an old address match a local account.
    """
    if not isinstance(emails, list):
        return None
    for entry in emails:
        if (
            isinstance(entry, dict)
            and entry.get("primary") is True
            and entry.get("verified") is True
            and isinstance(entry.get("email"), str)
        ):
            return str(entry["email"])
    return None
