"""RFC 7662 token introspection, used as a revocation check after local verification."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import requests

from ._http import DEFAULT_TIMEOUT, basic_auth, json_object
from .claims import Claims
from .errors import IssuerUnavailable, TokenRevoked

#: Beyond this many cached answers the expired ones are dropped (then all, if need be).
MAX_CACHED = 10_000


class ClientSecret(Protocol):
    """Anything holding a client's id and secret (a :class:`ClientCredentials` does)."""

    @property
    def client_id(self) -> str: ...

    @property
    def client_secret(self) -> str: ...


class Introspector:
    """Asks the introspection endpoint whether a token is still active; caches per ``jti``.

    The calling client authenticates with HTTP Basic and needs the issuer's ``introspect``
    scope. Both answers (active and inactive) are reused for ``cache_seconds``.
    """

    def __init__(
        self,
        endpoint: Callable[[], str],
        client: ClientSecret,
        http: requests.Session,
        *,
        cache_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._endpoint = endpoint
        self._client = client
        self._http = http
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[bool, float]] = {}

    def check(self, token: str, claims: Claims) -> None:
        """Return if the issuer holds the token active, raise :class:`TokenRevoked` if not."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(claims.token_id)
        if cached is not None and now < cached[1]:
            active = cached[0]
        else:
            active = self._ask(token)
            if self._cache_seconds > 0:
                with self._lock:
                    self._remember(claims.token_id, active, now)
        if not active:
            raise TokenRevoked("the token has been revoked or is no longer active")

    def _remember(self, jti: str, active: bool, now: float) -> None:
        if len(self._cache) >= MAX_CACHED:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
        self._cache[jti] = (active, now + self._cache_seconds)

    def _ask(self, token: str) -> bool:
        endpoint = self._endpoint()
        try:
            response = self._http.post(
                endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                headers={
                    "Authorization": basic_auth(self._client.client_id, self._client.client_secret),
                    "Accept": "application/json",
                },
                timeout=DEFAULT_TIMEOUT,
            )
        except requests.RequestException as exc:
            raise IssuerUnavailable(f"introspection unreachable: {type(exc).__name__}") from exc
        body = json_object(response)
        if response.status_code != 200 or body is None or not isinstance(body.get("active"), bool):
            error = body.get("error") if body is not None else None
            raise IssuerUnavailable(
                f"introspection failed: HTTP {response.status_code}"
                + (f" ({error})" if isinstance(error, str) else "")
            )
        return body["active"] is True
