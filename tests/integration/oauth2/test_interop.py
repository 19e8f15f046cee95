"""Tokens of this service are accepted by independent verifiers, over real HTTP.

One real server for the module (gunicorn with gunicorn.conf.py, via tests/running_server.py) on
the test PostgreSQL and Redis. Its service clients are made the way an operator makes them:
``flask ... clients create NAME --scope S --json`` in a subprocess with the server's environment.

- Resource servers that know nothing of this code base verify a user's access token and a
  service token with the keys they fetch from ``/.well-known/jwks.json``: Authlib's RFC 9068
  ``JWTBearerTokenValidator``, PyJWT's ``PyJWKClient``, and the npm ``jose`` package under Node
  (tests/interop/verify_with_jose.mjs). Each refuses a token whose signature was altered.
- Authlib's OAuth 2.0 client (``OAuth2Session``, ``client_secret_basic`` and ``_post``) runs the
  client-credentials grant, introspects (RFC 7662) and revokes (RFC 7009) against the server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis as redis_lib
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
from flask import Flask
from joserfc.jwk import KeySet

from tests.conftest import PASSWORD, reset_state
from tests.running_server import ROOT, Server, start_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ISSUER = "https://auth.test"
AUDIENCE = "auth-service"  # JWT_AUDIENCE's default: what the server below runs with
FIRST_PARTY = "first-party"  # FIRST_PARTY_CLIENT_ID's default
JOSE_VERIFIER = ROOT / "tests" / "interop" / "verify_with_jose.mjs"
JOSE_PACKAGE = ROOT / "tests" / "oidc_provider" / "node_modules" / "jose" / "package.json"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Registered:
    """A service client as ``clients create --json`` printed it."""

    client_id: str
    client_secret: str


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    """Replaces the conftest's per-test truncation: the module shares one server, its clients
    and users; ``server`` starts it on an emptied database once."""
    yield


@pytest.fixture(scope="module")
def server(
    app: Flask, redis_client: redis_lib.Redis, signing_key_pem: str, tmp_path_factory: Any
) -> Iterator[Server]:
    """gunicorn, two workers, on the test database (migrated by ``app``) and Redis."""
    reset_state(app, redis_client)
    workdir: Path = tmp_path_factory.mktemp("interop")
    running = start_service(workdir, signing_key_pem, JWT_ISSUER=ISSUER)
    try:
        yield running
    finally:
        running.stop()


def create_client(server: Server, name: str, *scopes: str) -> Registered:
    """``flask ... clients create`` as an operator runs it; its stdout is the JSON alone."""
    args = ["clients", "create", name, "--json"]
    for scope in scopes:
        args += ["--scope", scope]
    done = server.flask(*args)
    assert done.returncode == 0, f"{done.returncode}\n{done.stdout}\n{done.stderr}"
    printed = json.loads(done.stdout)
    assert set(printed) == {"client_id", "client_secret"}, printed
    return Registered(printed["client_id"], printed["client_secret"])


@pytest.fixture(scope="module")
def gateway(server: Server) -> Registered:
    """A resource server that introspects tokens."""
    return create_client(server, "gateway", "introspect")


@pytest.fixture(scope="module")
def orders(server: Server) -> Registered:
    """A service that calls others with its own token."""
    return create_client(server, "orders", "orders:read", "orders:write")


def sign_up(server: Server, email: str) -> dict[str, Any]:
    """Register and sign in over HTTP; the token pair."""
    body = {"email": email, "password": PASSWORD}
    registered = requests.post(f"{server.url}/api/v1/auth/register", json=body, timeout=TIMEOUT_S)
    assert registered.status_code == 201, f"{registered.text}\n{server.logs()}"
    signed_in = requests.post(f"{server.url}/api/v1/auth/login", json=body, timeout=TIMEOUT_S)
    assert signed_in.status_code == 200, f"{signed_in.text}\n{server.logs()}"
    tokens: dict[str, Any] = signed_in.json()
    return tokens


@pytest.fixture(scope="module")
def tokens(server: Server, orders: Registered) -> dict[str, str]:
    """A user's access token and a service token, as the server issued them."""
    user = sign_up(server, "interop@example.com")
    answer = requests.post(
        f"{server.url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(orders.client_id, orders.client_secret),
        timeout=TIMEOUT_S,
    )
    assert answer.status_code == 200, answer.text
    return {"user": user["access_token"], "service": answer.json()["access_token"]}


def expected_claims(kind: str, orders: Registered) -> dict[str, Any]:
    if kind == "user":
        return {"sub": None, "client_id": FIRST_PARTY, "type": "access"}
    return {
        "sub": orders.client_id,
        "client_id": orders.client_id,
        "scope": "orders:read orders:write",
        "type": "service",
    }


def assert_claims(claims: dict[str, Any], kind: str, orders: Registered) -> None:
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE or claims["aud"] == [AUDIENCE]
    for name, value in expected_claims(kind, orders).items():
        if value is None:
            assert claims[name], name
        else:
            assert claims[name] == value, name
    if kind == "user":
        assert claims["email"] == "interop@example.com"


def tampered(token: str) -> str:
    """The same header and claims, one character of the signature changed (mid-signature:
    the last base64url character may carry only padding bits)."""
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    changed = "B" if signature[middle] == "A" else "A"
    return ".".join([header, payload, signature[:middle] + changed + signature[middle + 1 :]])


KINDS = ["user", "service"]


# --- Authlib's RFC 9068 resource-server validator --------------------------------------------


class RemoteJWKSValidator(JWTBearerTokenValidator):
    """Authlib's RFC 9068 validator with the keys fetched from the server's JWKS over HTTP."""

    def __init__(self, jwks_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jwks_url = jwks_url

    def get_jwks(self) -> KeySet:
        answer = requests.get(self.jwks_url, timeout=TIMEOUT_S)
        answer.raise_for_status()
        return KeySet.import_key_set(answer.json())  # (a plain dict is deprecated in Authlib)


def authlib_validate(server: Server, token: str) -> dict[str, Any]:
    validator = RemoteJWKSValidator(
        f"{server.url}/.well-known/jwks.json", issuer=ISSUER, resource_server=AUDIENCE
    )
    claims = validator.authenticate_token(token)
    validator.validate_token(claims, scopes=None, request=None)  # typ, iss, aud, exp, ...
    return dict(claims)


@pytest.mark.parametrize("kind", KINDS)
def test_authlib_rfc9068_validator_accepts_the_token(
    server: Server, tokens: dict[str, str], orders: Registered, kind: str
) -> None:
    assert_claims(authlib_validate(server, tokens[kind]), kind, orders)


@pytest.mark.parametrize("kind", KINDS)
def test_authlib_rfc9068_validator_refuses_a_tampered_signature(
    server: Server, tokens: dict[str, str], kind: str
) -> None:
    with pytest.raises(InvalidTokenError):
        authlib_validate(server, tampered(tokens[kind]))


# --- PyJWT -------------------------------------------------------------------------------------


def pyjwt_decode(server: Server, token: str) -> dict[str, Any]:
    keys = jwt.PyJWKClient(f"{server.url}/.well-known/jwks.json", cache_keys=False)
    key = keys.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        issuer=ISSUER,
        audience=AUDIENCE,
        options={"require": ["iss", "aud", "sub", "exp", "iat", "jti", "client_id"]},
    )
    return claims


@pytest.mark.parametrize("kind", KINDS)
def test_pyjwt_jwk_client_accepts_the_token(
    server: Server, tokens: dict[str, str], orders: Registered, kind: str
) -> None:
    assert jwt.get_unverified_header(tokens[kind])["typ"] == "at+jwt"
    assert_claims(pyjwt_decode(server, tokens[kind]), kind, orders)


@pytest.mark.parametrize("kind", KINDS)
def test_pyjwt_refuses_a_tampered_signature(
    server: Server, tokens: dict[str, str], kind: str
) -> None:
    with pytest.raises(jwt.InvalidSignatureError):
        pyjwt_decode(server, tampered(tokens[kind]))


# --- npm jose under Node -----------------------------------------------------------------------


def jose_verify(
    server: Server, token: str, audience: str = AUDIENCE
) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None or not JOSE_PACKAGE.exists():
        pytest.skip("node and tests/oidc_provider's node_modules are needed: make test-tools")
    return subprocess.run(  # noqa: S603 - node on our own script
        [node, str(JOSE_VERIFIER), f"{server.url}/.well-known/jwks.json", ISSUER, audience, token],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


@pytest.mark.parametrize("kind", KINDS)
def test_node_jose_accepts_the_token(
    server: Server, tokens: dict[str, str], orders: Registered, kind: str
) -> None:
    done = jose_verify(server, tokens[kind])
    assert done.returncode == 0, done.stderr
    assert_claims(json.loads(done.stdout), kind, orders)


@pytest.mark.parametrize("kind", KINDS)
def test_node_jose_refuses_a_tampered_signature_and_another_audience(
    server: Server, tokens: dict[str, str], kind: str
) -> None:
    forged = jose_verify(server, tampered(tokens[kind]))
    assert forged.returncode == 1, forged.stdout
    assert "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" in forged.stderr
    elsewhere = jose_verify(server, tokens[kind], audience="https://another-api.example")
    assert elsewhere.returncode == 1, elsewhere.stdout
    assert "ERR_JWT_CLAIM_VALIDATION_FAILED" in elsewhere.stderr


# --- Authlib's OAuth 2.0 client ----------------------------------------------------------------

METHODS = ["client_secret_basic", "client_secret_post"]


def session_for(client: Registered, method: str, **kwargs: Any) -> OAuth2Session:
    return OAuth2Session(
        client.client_id,
        client.client_secret,
        token_endpoint_auth_method=method,
        revocation_endpoint_auth_method=method,
        **kwargs,
    )


def introspect(session: OAuth2Session, server: Server, token: str) -> dict[str, Any]:
    answer = session.introspect_token(
        f"{server.url}/oauth2/introspect", token=token, token_type_hint="access_token"
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("method", METHODS)
def test_authlib_client_gets_a_service_token_with_client_credentials(
    server: Server, orders: Registered, method: str
) -> None:
    with session_for(orders, method, scope="orders:read") as session:
        token = session.fetch_token(f"{server.url}/oauth2/token", grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "orders:read"
    assert token["expires_in"] > 0
    assert "refresh_token" not in token
    claims = pyjwt_decode(server, token["access_token"])
    assert claims["client_id"] == claims["sub"] == orders.client_id
    assert claims["scope"] == "orders:read"


@pytest.mark.parametrize("method", METHODS)
def test_authlib_client_introspects_a_users_token_active_then_inactive_after_logout(
    server: Server, gateway: Registered, method: str
) -> None:
    user = sign_up(server, f"introspected-{method.replace('_', '-')}@example.com")
    with session_for(gateway, method) as session:
        session.fetch_token(f"{server.url}/oauth2/token", grant_type="client_credentials")
        active = introspect(session, server, user["access_token"])
        assert active["active"] is True
        assert (
            active["sub"]
            == jwt.decode(user["access_token"], options={"verify_signature": False})["sub"]
        )
        assert active["client_id"] == FIRST_PARTY
        assert active["iss"] == ISSUER

        logout = requests.post(
            f"{server.url}/api/v1/auth/logout",
            headers={"Authorization": f"Bearer {user['access_token']}"},
            timeout=TIMEOUT_S,
        )
        assert logout.status_code < 300, logout.text
        assert introspect(session, server, user["access_token"]) == {"active": False}


@pytest.mark.parametrize("method", METHODS)
def test_authlib_client_revokes_its_own_token(
    server: Server, gateway: Registered, method: str
) -> None:
    with session_for(gateway, method) as session:
        token = session.fetch_token(f"{server.url}/oauth2/token", grant_type="client_credentials")
        own = token["access_token"]
        assert introspect(session, server, own)["active"] is True
        revoked = session.revoke_token(
            f"{server.url}/oauth2/revoke", token=own, token_type_hint="access_token"
        )
        assert revoked.status_code == 200, revoked.text
        # introspection authenticates the client, not the bearer: the revoked token may ask
        assert introspect(session, server, own) == {"active": False}
