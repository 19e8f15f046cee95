"""A small local issuer for the SDK tests: discovery, JWKS, token and introspection endpoints.

It speaks the auth service's wire contract (docs/API.md "Tokens" and "Services") and counts
every request, so the tests can tell how often the client library called it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

AUDIENCE = "orders-api"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class SigningKey:
    """A private key, the algorithm it signs with and its kid."""

    kid: str
    alg: str
    private: PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        algorithm = {
            "RS256": jwt.algorithms.RSAAlgorithm,
            "ES256": jwt.algorithms.ECAlgorithm,
            "EdDSA": jwt.algorithms.OKPAlgorithm,
        }[self.alg]
        jwk: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)  # type: ignore[attr-defined]
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(alg: str, kid: str | None = None) -> SigningKey:
    private: PrivateKey
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", alg, private)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return head + "." + b64url(signature)


def hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token made by hand (PyJWT refuses to HMAC with a PEM public key)."""
    head = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return head + "." + b64url(hmac.new(secret, head.encode(), hashlib.sha256).digest())


@dataclass
class Client:
    secret: str
    scopes: set[str]


@dataclass
class StubIssuer:
    """The issuer; ``start()`` serves it on 127.0.0.1 on a free port."""

    keys: list[SigningKey]
    max_age: int | None = 300
    clients: dict[str, Client] = field(default_factory=dict)
    token_lifetime: int = 300
    revoked: set[str] = field(default_factory=set)
    #: Paths answering 404 (say, the RFC 8414 document, to test the OpenID fallback).
    missing: set[str] = field(default_factory=set)
    #: Paths answering 500.
    failing: set[str] = field(default_factory=set)
    #: The ``issuer`` the metadata documents claim (None: the real base URL).
    claimed_issuer: str | None = None
    #: Set: the token endpoint waits for it before answering (the thread-safety test).
    token_gate: threading.Event | None = None
    requests: Counter[str] = field(default_factory=Counter)
    #: Status codes answered on the JWKS path, in order.
    jwks_statuses: list[int] = field(default_factory=list)
    #: Authorization headers and forms the token and introspection endpoints received.
    seen: list[tuple[str, str | None, dict[str, str]]] = field(default_factory=list)
    _server: BaseWSGIServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- serving ---------------------------------------------------------------------------
    def start(self) -> StubIssuer:
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def jwks_uri(self) -> str:
        return self.url + "/.well-known/jwks.json"

    @property
    def token_endpoint(self) -> str:
        return self.url + "/oauth2/token"

    def count(self, path: str) -> int:
        with self._lock:
            return self.requests[path]

    # -- tokens ----------------------------------------------------------------------------
    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "user-42",
            "iat": now,
            "nbf": now,
            "exp": now + 900,
            "jti": uuid.uuid4().hex,
            "type": "access",
            "sid": "session-7",
            "fresh": True,
            "email": "ada@example.com",
            "email_verified": True,
            "roles": ["user"],
            "amr": ["pwd"],
            "client_id": "first-party",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(
        self,
        key: SigningKey | None = None,
        *,
        typ: str | None = "at+jwt",
        kid: str | None = None,
        **overrides: Any,
    ) -> str:
        key = key or self.keys[0]
        headers: dict[str, Any] = {"kid": kid or key.kid}
        if typ is not None:
            headers["typ"] = typ
        return jwt.encode(self.claims(**overrides), key.private, algorithm=key.alg, headers=headers)

    # -- the endpoints ---------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.requests[request.path] += 1
        response = self._route(request)
        if request.path.endswith("jwks.json"):
            with self._lock:
                self.jwks_statuses.append(response.status_code)
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        if request.path in self.missing:
            return Response("not found", status=404)
        if request.path in self.failing:
            return Response("boom", status=500)
        routes = {
            "/.well-known/oauth-authorization-server": self._metadata,
            "/.well-known/openid-configuration": self._metadata,
            "/.well-known/jwks.json": self._jwks,
            "/oauth2/token": self._token,
            "/oauth2/introspect": self._introspect,
        }
        handler = routes.get(request.path)
        return handler(request) if handler else Response("not found", status=404)

    def _metadata(self, request: Request) -> Response:
        return _json(
            {
                "issuer": self.claimed_issuer or self.url,
                "jwks_uri": self.jwks_uri,
                "token_endpoint": self.token_endpoint,
                "introspection_endpoint": self.url + "/oauth2/introspect",
                "revocation_endpoint": self.url + "/oauth2/revoke",
                "grant_types_supported": ["client_credentials"],
            }
        )

    def _jwks(self, request: Request) -> Response:
        body = json.dumps({"keys": [key.public_jwk() for key in self.keys]}, sort_keys=True)
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
        headers = {"ETag": etag}
        if self.max_age is not None:
            headers["Cache-Control"] = f"public, max-age={self.max_age}"
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers=headers)
        return Response(body, headers=headers, content_type="application/json")

    def _client(self, request: Request) -> tuple[str, Client] | None:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            # RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
            client_id, secret = unquote(auth.username or ""), unquote(auth.password or "")
        else:
            client_id = request.form.get("client_id", "")
            secret = request.form.get("client_secret", "")
        client = self.clients.get(client_id)
        if client is None or not hmac.compare_digest(client.secret, secret):
            return None
        return client_id, client

    def _token(self, request: Request) -> Response:
        with self._lock:
            self.seen.append(
                (request.path, request.headers.get("Authorization"), dict(request.form))
            )
        if self.token_gate is not None:
            self.token_gate.wait(timeout=10)
        found = self._client(request)
        if found is None:
            return _json({"error": "invalid_client", "error_description": "who?"}, 401)
        if request.form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        client_id, client = found
        asked = set(request.form.get("scope", "").split()) or client.scopes
        if not asked <= client.scopes:
            return _json({"error": "invalid_scope", "error_description": "not yours"}, 400)
        scope = " ".join(sorted(asked))
        token = self.sign(
            sub=client_id,
            client_id=client_id,
            scope=scope,
            exp=int(time.time()) + self.token_lifetime,
            email=None,
            email_verified=None,
            roles=None,
            amr=None,
            sid=None,
            fresh=None,
        )
        return _json(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "scope": scope,
            }
        )

    def _introspect(self, request: Request) -> Response:
        with self._lock:
            self.seen.append(
                (request.path, request.headers.get("Authorization"), dict(request.form))
            )
        found = self._client(request)
        if found is None or "introspect" not in found[1].scopes:
            return _json({"error": "invalid_client"}, 401)
        try:
            claims = jwt.decode(request.form["token"], options={"verify_signature": False})
        except (KeyError, jwt.InvalidTokenError):
            return _json({"active": False})
        if claims.get("jti") in self.revoked:
            return _json({"active": False})
        return _json({"active": True, "sub": claims["sub"], "token_type": "access_token"})


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
