"""RFC 8414 / OpenID discovery of the issuer's endpoints."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import requests

from ._http import DEFAULT_TIMEOUT, json_object
from .errors import IssuerUnavailable

WELL_KNOWN = ("oauth-authorization-server", "openid-configuration")


class Discovery:
    """The issuer's metadata, fetched once and kept.

    ``{issuer}/.well-known/oauth-authorization-server`` first, then
    ``{issuer}/.well-known/openid-configuration``; the document's ``issuer`` must equal the
    configured one exactly. A failed attempt is not retried for ``retry_interval`` seconds (a down
    issuer is not asked once per incoming request); meanwhile :class:`IssuerUnavailable` is raised.
    """

    def __init__(
        self,
        issuer: str,
        http: requests.Session,
        *,
        retry_interval: float = 30,
        clock: Callable[[], float],
    ) -> None:
        self.issuer = issuer
        self._http = http
        self._retry_interval = retry_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._failed_at: float | None = None
        self._failure = ""

    def metadata(self) -> dict[str, Any]:
        """The metadata document; raises :class:`IssuerUnavailable` when it cannot be had."""
        with self._lock:
            if self._metadata is not None:
                return self._metadata
            now = self._clock()
            failed_at = self._failed_at
            if failed_at is not None and now - failed_at < self._retry_interval:
                left = _seconds_left(self._retry_interval, now - failed_at)
                raise IssuerUnavailable(self._failure, retry_after=left)
            try:
                self._metadata = self._fetch()
            except IssuerUnavailable as exc:
                self._failed_at, self._failure = now, exc.description
                raise
            self._failed_at = None
            return self._metadata

    def endpoint(self, name: str) -> str:
        """A URL from the metadata (``jwks_uri``, ``introspection_endpoint``, ...)."""
        value = self.metadata().get(name)
        if not isinstance(value, str) or not value:
            raise IssuerUnavailable(f"the issuer's metadata has no {name}")
        return value

    def _fetch(self) -> dict[str, Any]:
        base = self.issuer.rstrip("/")
        problems = []
        for name in WELL_KNOWN:
            url = f"{base}/.well-known/{name}"
            try:
                response = self._http.get(url, timeout=DEFAULT_TIMEOUT)
            except requests.RequestException as exc:
                problems.append(f"{url}: {type(exc).__name__}")
                continue
            document = json_object(response) if response.status_code == 200 else None
            if document is None or not isinstance(document.get("jwks_uri"), str):
                problems.append(f"{url}: HTTP {response.status_code}, no usable metadata")
                continue
            if document.get("issuer") != self.issuer:
                # A document for another issuer is a misconfiguration (or worse): no fallback.
                raise IssuerUnavailable(
                    f"discovery document at {url} names issuer {document.get('issuer')!r}, "
                    f"expected {self.issuer!r}"
                )
            return document
        raise IssuerUnavailable("issuer discovery failed: " + "; ".join(problems))


def _seconds_left(interval: float, elapsed: float) -> int:
    """Whole seconds (at least 1) until ``interval`` has passed: a ``Retry-After`` value."""
    return max(1, math.ceil(interval - elapsed))
