"""OAuth 2.0 client-credentials grant (RFC 6749 §4.4) with a cached token."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Literal

import requests

from ._http import DEFAULT_TIMEOUT, basic_auth, json_object, new_session
from .errors import ClientCredentialsError


class ClientCredentials:
    """A service's own access token, fetched from ``token_url`` and reused until near expiry.

    >>> creds = ClientCredentials("https://auth.example.com/oauth2/token", "id", "secret",
    ...                           scope="orders:read")
    >>> requests.get(url, headers=creds.auth_header())   # doctest: +SKIP

    The token is fetched again ``refresh_margin`` seconds before ``expires_in`` runs out (at
    most half its lifetime early, so short tokens still get reused). Thread-safe: threads asking
    together while no good token is held cause one request. The client authenticates with HTTP
    Basic by default (``auth_method="client_secret_post"`` sends form fields instead).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | Iterable[str] | None = None,
        http: requests.Session | None = None,
        refresh_margin: float = 30,
        auth_method: Literal["client_secret_basic", "client_secret_post"] = ("client_secret_basic"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ValueError("auth_method must be client_secret_basic or client_secret_post")
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope if scope is None or isinstance(scope, str) else " ".join(scope)
        self.refresh_margin = refresh_margin
        self.auth_method = auth_method
        self._owns_http = http is None
        self._http = http if http is not None else new_session()
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        #: The ``scope`` the issuer granted with the current token (None: it did not say).
        self.granted_scope: str | None = None

    def token(self) -> str:
        """A valid access token, from the cache or freshly fetched."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                return self._fetch()
            return self._token

    def auth_header(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``, to merge into a request's headers."""
        return {"Authorization": f"Bearer {self.token()}"}

    def invalidate(self) -> None:
        """Forget the cached token (say, after a resource server answered 401 to it)."""
        with self._lock:
            self._token = None

    def close(self) -> None:
        """Close the HTTP session when this object made it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ClientCredentials:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _fetch(self) -> str:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        headers = {"Accept": "application/json"}
        if self.auth_method == "client_secret_basic":
            headers["Authorization"] = basic_auth(self.client_id, self.client_secret)
        else:
            data["client_id"], data["client_secret"] = self.client_id, self.client_secret
        started = self._clock()
        try:
            response = self._http.post(
                self.token_url, data=data, headers=headers, timeout=DEFAULT_TIMEOUT
            )
        except requests.RequestException as exc:
            raise ClientCredentialsError(
                "temporarily_unavailable", f"token endpoint unreachable: {type(exc).__name__}"
            ) from exc
        body = json_object(response)
        if response.status_code != 200 or body is None:
            raise _oauth_error(response.status_code, body)
        access_token, expires_in = body.get("access_token"), body.get("expires_in")
        token_type = body.get("token_type")
        if not isinstance(access_token, str) or not access_token:
            raise ClientCredentialsError("invalid_response", "no access_token", status=200)
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise ClientCredentialsError("invalid_response", f"token_type {token_type!r}")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 0.0
        self._token = access_token
        self._refresh_at = started + max(lifetime - min(self.refresh_margin, lifetime / 2), 0.0)
        scope = body.get("scope")
        self.granted_scope = scope if isinstance(scope, str) else None
        return access_token


def _oauth_error(status: int, body: dict[str, object] | None) -> ClientCredentialsError:
    error = body.get("error") if body is not None else None
    description = body.get("error_description") if body is not None else None
    if isinstance(error, str):
        return ClientCredentialsError(
            error, description if isinstance(description, str) else None, status=status
        )
    return ClientCredentialsError(
        "temporarily_unavailable", f"token endpoint answered HTTP {status}", status=status
    )
