"""Offline verification of the auth service's access tokens (RFC 9068 JWTs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Any, Literal

import jwt
import requests

from ._http import new_session
from .claims import Claims
from .discovery import Discovery
from .errors import InvalidToken, TokenExpired
from .introspection import ClientSecret, Introspector
from .jwks import FORBIDDEN_ALGORITHMS, JWKSCache

#: ``typ`` header values RFC 9068 allows for access tokens (compared case-insensitively).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: Claims every access token must carry.
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")


#: The ``type`` claims of access tokens: a user's (``access``) and a service's (``service``,
#: from the client-credentials grant). Refresh and second-factor tokens are refused.
ACCESS_TOKEN_KINDS = frozenset({"access", "service"})


class Verifier:
    """Verifies access tokens against one issuer's published keys.

    >>> verifier = Verifier("https://auth.example.com", "orders-api")
    >>> claims = verifier.verify(token)          # doctest: +SKIP

    Discovery and the JWKS are fetched on first use (constructing never touches the network).
    The algorithm comes from the matching key, never from the token alone; ``none`` and HMAC
    are refused outright. ``revocation="introspect"`` adds an RFC 7662 check per token (cached
    by ``jti`` for ``introspection_cache_seconds``) with ``introspection_client``'s credentials.

    ``clock`` (monotonic seconds) drives the caches; tests inject their own. ``jwks_uri`` and
    ``introspection_endpoint`` skip discovery for that URL when given.
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Collection[str],
        *,
        leeway: float = 30,
        algorithms: Iterable[str] = ("RS256", "ES256", "EdDSA"),
        http: requests.Session | None = None,
        jwks_min_refetch_interval: float = 30,
        revocation: Literal["introspect"] | None = None,
        introspection_client: ClientSecret | None = None,
        introspection_cache_seconds: float = 5,
        clock: Callable[[], float] = time.monotonic,
        jwks_uri: str | None = None,
        introspection_endpoint: str | None = None,
    ) -> None:
        algorithms = tuple(algorithms)
        refused = sorted(a for a in algorithms if a in FORBIDDEN_ALGORITHMS or a.startswith("HS"))
        if refused:
            raise ValueError(f"algorithms not allowed for access tokens: {refused}")
        if not algorithms:
            raise ValueError("at least one algorithm is needed")
        if not issuer:
            raise ValueError("issuer is required")
        if not audience:
            raise ValueError("audience is required")
        if revocation not in (None, "introspect"):
            raise ValueError("revocation must be None or 'introspect'")
        if revocation == "introspect" and introspection_client is None:
            raise ValueError("revocation='introspect' needs introspection_client")
        self.issuer = issuer
        self.audience: str | list[str] = audience if isinstance(audience, str) else list(audience)
        self.leeway = leeway
        self.algorithms = algorithms
        self._owns_http = http is None
        self._http = http if http is not None else new_session()
        self.discovery = Discovery(
            issuer, self._http, retry_interval=jwks_min_refetch_interval, clock=clock
        )
        self.jwks = JWKSCache(
            (lambda: jwks_uri) if jwks_uri else (lambda: self.discovery.endpoint("jwks_uri")),
            self._http,
            algorithms=algorithms,
            min_refetch_interval=jwks_min_refetch_interval,
            clock=clock,
        )
        self._introspector: Introspector | None = None
        if revocation == "introspect" and introspection_client is not None:
            self._introspector = Introspector(
                (lambda: introspection_endpoint)
                if introspection_endpoint
                else (lambda: self.discovery.endpoint("introspection_endpoint")),
                introspection_client,
                self._http,
                cache_seconds=introspection_cache_seconds,
                clock=clock,
            )

    def verify(self, token: str) -> Claims:
        """Verify an access token and return its claims.

        Raises :class:`TokenExpired`, :class:`InvalidToken`, :class:`TokenRevoked` (all 401
        material) or :class:`IssuerUnavailable` (503: the keys or introspection were out of reach).
        """
        kid = self._check_header(token)
        key = self.jwks.get(kid)
        if key is None:
            raise InvalidToken("the token's signing key is unknown to the issuer")
        claims = Claims.from_payload(self._decode(token, key))
        if self._introspector is not None:
            self._introspector.check(token, claims)
        return claims

    def close(self) -> None:
        """Close the HTTP session when the verifier made it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_header(self, token: str) -> str:
        """Everything checkable before a key is looked up; returns the ``kid``."""
        if not isinstance(token, str) or token.count(".") != 2:
            raise InvalidToken("not a JWS compact serialization")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("malformed token header") from exc
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("not an access token (typ must be at+jwt)")
        if header.get("alg") not in self.algorithms:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token header has no kid")
        return kid

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                # The key decides: the header's alg must be the key's own.
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("the token is not meant for this audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("the token comes from another issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("the token's signature does not verify") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("the token is invalid") from exc
        if payload.get("type", "access") not in ACCESS_TOKEN_KINDS:
            raise InvalidToken("not an access token")
        return payload
