"""The issuer's JSON Web Key Set, cached as HTTP says and refetched sparingly."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Collection
from typing import Any

import jwt
import requests

from ._http import DEFAULT_TIMEOUT, json_object, max_age
from .errors import IssuerUnavailable

log = logging.getLogger(__name__)

#: Used when the JWKS answer has no Cache-Control max-age.
DEFAULT_MAX_AGE = 300
#: A longer max-age is cut to this, so a rotation is never missed for long.
MAX_MAX_AGE = 24 * 3600
#: Algorithms a key may never carry, whatever the configuration.
FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})


class JWKSCache:
    """Keys by ``kid`` from one ``jwks_uri``; thread-safe.

    * The set is reused for the answer's ``Cache-Control: max-age``, then revalidated with
      ``If-None-Match`` (a 304 keeps the keys and restarts the max-age).
    * An unknown ``kid`` refetches at once, but never sooner than ``min_refetch_interval``
      seconds after the previous fetch: a flood of random kids costs the issuer one request.
    * When a revalidation fails the keys already held are kept (and the next attempt waits
      ``min_refetch_interval``); only having no keys at all raises :class:`IssuerUnavailable`.

    Keys whose ``use`` is not ``sig``, whose algorithm is not in ``algorithms``, or that the
    installed ``cryptography`` cannot load, are left out.
    """

    def __init__(
        self,
        jwks_uri: Callable[[], str],
        http: requests.Session,
        *,
        algorithms: Collection[str],
        min_refetch_interval: float,
        clock: Callable[[], float],
    ) -> None:
        self._jwks_uri = jwks_uri
        self._http = http
        self._algorithms = frozenset(algorithms) - FORBIDDEN_ALGORITHMS
        self._min_refetch_interval = min_refetch_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._etag: str | None = None
        self._max_age = DEFAULT_MAX_AGE
        self._fresh_until = 0.0
        self._last_attempt: float | None = None
        self._failure = "JWKS not fetched yet"
        #: Requests sent to the jwks_uri, for metrics and tests.
        self.fetches = 0

    def get(self, kid: str) -> jwt.PyJWK | None:
        """The key with this ``kid``, or None when the issuer does not (or no longer) have it."""
        with self._lock:
            now = self._clock()
            if self._keys is None or now >= self._fresh_until:
                self._refresh(now)
            if kid not in (self._keys or {}) and self._may_fetch(now):
                self._refresh(now)
            return (self._keys or {}).get(kid)

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self._min_refetch_interval

    def _refresh(self, now: float) -> None:
        if not self._may_fetch(now):
            if self._keys is None:
                raise IssuerUnavailable(self._failure, retry_after=self._retry_after(now))
            return
        self._last_attempt = now
        try:
            self._fetch(now)
        except IssuerUnavailable as exc:
            self._failure = exc.description
            if self._keys is None:
                raise IssuerUnavailable(
                    exc.description, retry_after=self._retry_after(now)
                ) from exc
            log.warning("keeping the cached JWKS: %s", exc.description)

    def _retry_after(self, now: float) -> int:
        elapsed = 0.0 if self._last_attempt is None else now - self._last_attempt
        return max(1, math.ceil(self._min_refetch_interval - elapsed))

    def _fetch(self, now: float) -> None:
        uri = self._jwks_uri()
        headers = {"Accept": "application/json"}
        if self._etag and self._keys is not None:
            headers["If-None-Match"] = self._etag
        self.fetches += 1
        try:
            response = self._http.get(uri, headers=headers, timeout=DEFAULT_TIMEOUT)
        except requests.RequestException as exc:
            raise IssuerUnavailable(f"JWKS unreachable: {type(exc).__name__}") from exc
        if response.status_code == 304 and self._keys is not None:
            self._max_age = self._age(response, self._max_age)
            self._fresh_until = now + self._max_age
            return
        document = json_object(response) if response.status_code == 200 else None
        keys = document.get("keys") if document is not None else None
        if not isinstance(keys, list):
            raise IssuerUnavailable(f"JWKS answer unusable: HTTP {response.status_code}")
        self._keys = self._load(keys)
        self._etag = response.headers.get("ETag")
        self._max_age = self._age(response, DEFAULT_MAX_AGE)
        self._fresh_until = now + self._max_age

    @staticmethod
    def _age(response: requests.Response, default: int) -> int:
        return min(max_age(response.headers.get("Cache-Control"), default), MAX_MAX_AGE)

    def _load(self, keys: list[Any]) -> dict[str, jwt.PyJWK]:
        loaded: dict[str, jwt.PyJWK] = {}
        for jwk in keys:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            if jwk.get("use", "sig") != "sig" or jwk.get("alg", "") in FORBIDDEN_ALGORITHMS:
                continue
            try:
                # With "alg" absent PyJWK infers it from kty/crv (RSA: RS256, P-256: ES256,
                # Ed25519: EdDSA); with it present the key must suit it.
                key = jwt.PyJWK(jwk)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
                log.warning("skipping JWK %s: %s", jwk.get("kid"), exc)
                continue
            if key.algorithm_name in self._algorithms:
                loaded[jwk["kid"]] = key
        return loaded
