"""Sign in with Apple against a local fake (pytest-httpserver), through the real client code."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from jwt.algorithms import RSAAlgorithm
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from auth_microservice_app.extensions import db
from tests.conftest import make_app
from tests.integration.oauth.conftest import (
    CLIENT_REDIRECT,
    OUR_BASE,
    access_claims,
    bearer,
    query,
    s256,
)

pytestmark = pytest.mark.integration
APPLE_ISSUER = "https://appleid.apple.com"
CLIENT_ID = "com.example.service"
BUNDLE_ID = "com.example.ios"
TEAM_ID = "TEAM123456"
KEY_ID = "KEY7654321"
CALLBACK = f"{OUR_BASE}/api/v1/oauth/apple/callback"
APPLE_KID = "apple-fake-kid"


class FakeApple:
    """Apple's discovery, JWKS and token endpoint; checks our client-secret JWT and verifier."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.client_key = ec.generate_private_key(ec.SECP256R1())
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.code = "apple-code-1"
        self.nonce: str | None = None
        self.challenge: str | None = None
        self.sub = "001234.abcdef.1234"
        self.email = "x7k2@privaterelay.appleid.com"
        self.token_forms: list[dict[str, str]] = []
        self.client_secrets: list[tuple[dict[str, Any], dict[str, Any]]] = []
        jwk = {
            **json.loads(RSAAlgorithm.to_jwk(self.signing_key.public_key())),
            "kid": APPLE_KID,
            "alg": "RS256",
            "use": "sig",
        }
        server.expect_request("/apple/.well-known/openid-configuration").respond_with_json(
            {
                "issuer": APPLE_ISSUER,
                "authorization_endpoint": server.url_for("/apple/auth/authorize"),
                "token_endpoint": server.url_for("/apple/auth/token"),
                "jwks_uri": server.url_for("/apple/auth/keys"),
                "response_modes_supported": ["query", "fragment", "form_post"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )
        server.expect_request("/apple/auth/keys").respond_with_json({"keys": [jwk]})
        server.expect_request("/apple/auth/token", method="POST").respond_with_handler(self._token)

    @property
    def private_key_pem(self) -> str:
        return self.client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def id_token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": APPLE_ISSUER,
            "aud": CLIENT_ID,
            "sub": self.sub,
            "iat": now,
            "exp": now + 600,
            "email": self.email,
            "email_verified": "true",  # Apple sends strings
            "is_private_email": "true",
            "nonce": self.nonce,
        }
        claims.update(overrides)
        claims = {key: value for key, value in claims.items() if value is not None}
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": APPLE_KID})

    def _token(self, request: Request) -> Response:
        form = request.form.to_dict()
        self.token_forms.append(form)
        secret = form.get("client_secret", "")
        header = jwt.get_unverified_header(secret)
        claims = jwt.decode(
            secret,
            self.client_key.public_key(),
            algorithms=["ES256"],
            audience=APPLE_ISSUER,
            issuer=TEAM_ID,
        )
        self.client_secrets.append((header, claims))
        ok = (
            form.get("client_id") == CLIENT_ID
            and claims["sub"] == CLIENT_ID
            and header.get("kid") == KEY_ID
            and form.get("code") == self.code
            and form.get("redirect_uri") == CALLBACK
            and self.challenge is not None
            and s256(form.get("code_verifier", "")) == self.challenge
        )
        if not ok:
            body: dict[str, Any] = {"error": "invalid_grant"}
            return Response(json.dumps(body), status=400, content_type="application/json")
        body = {
            "access_token": "apple-access",
            "token_type": "Bearer",
            "expires_in": 3600,
            "id_token": self.id_token(),
        }
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def apple(httpserver: HTTPServer) -> FakeApple:
    return FakeApple(httpserver)


@pytest.fixture
def apple_app(app: Flask, signing_key_pem: str, httpserver: HTTPServer, apple: FakeApple):
    application = make_app(
        signing_key_pem,
        APPLE_CLIENT_ID=CLIENT_ID,
        APPLE_TEAM_ID=TEAM_ID,
        APPLE_KEY_ID=KEY_ID,
        APPLE_PRIVATE_KEY=apple.private_key_pem,
        APPLE_DISCOVERY_URL=httpserver.url_for("/apple/.well-known/openid-configuration"),
        APPLE_EXTRA_AUDIENCES=[BUNDLE_ID],
        OAUTH_REDIRECT_ALLOWLIST=[CLIENT_REDIRECT],
        OAUTH_CALLBACK_BASE_URL=OUR_BASE,
    )
    yield application
    with application.app_context():
        db.engine.dispose()


def authorize(client, apple: FakeApple) -> dict[str, str]:
    response = client.get(
        "/api/v1/oauth/apple/authorize?" + urlencode({"redirect_uri": CLIENT_REDIRECT})
    )
    assert response.status_code == 302
    params = query(response.headers["Location"])
    apple.nonce, apple.challenge = params.get("nonce"), params.get("code_challenge")
    return params


def form_post(client, apple: FakeApple, user: dict[str, Any] | None = None) -> dict[str, str]:
    """Apple's browser answer: a POSTed form with code, state and (first time only) user."""
    form = {"code": apple.code, "state": authorize(client, apple)["state"]}
    if user is not None:
        form["user"] = json.dumps(user)
    response = client.post("/api/v1/oauth/apple/callback", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].startswith(CLIENT_REDIRECT + "?")
    assert response.headers["Cache-Control"] == "no-store"
    return query(response.headers["Location"])


def sign_in(client, apple: FakeApple, user: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = form_post(client, apple, user)
    assert "code" in answer, answer
    response = client.post("/api/v1/oauth/exchange", json={"code": answer["code"]})
    assert response.status_code == 200, response.json
    return dict(response.json)


FIRST_TIME_USER = {
    "name": {"firstName": "Ada", "lastName": "Lovelace"},
    "email": "attacker-chosen@example.com",  # unsigned: never used
}


def test_authorize_asks_for_form_post_with_nonce_and_pkce(apple_app, apple, httpserver):
    location = (
        apple_app.test_client()
        .get("/api/v1/oauth/apple/authorize", query_string={"redirect_uri": CLIENT_REDIRECT})
        .headers["Location"]
    )
    assert location.startswith(httpserver.url_for("/apple/auth/authorize") + "?")
    params = query(location)
    assert params["response_mode"] == "form_post"
    assert set(params["scope"].split()) == {"name", "email"}
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == CALLBACK
    assert params["code_challenge_method"] == "S256"
    assert params["nonce"] and params["state"]


def test_form_post_sign_in_takes_the_name_on_first_sign_in_only(apple_app, apple):
    client = apple_app.test_client()
    pair = sign_in(client, apple, FIRST_TIME_USER)
    me = client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])).json["user"]
    assert me["name"] == "Ada Lovelace"
    assert me["email"] == apple.email
    assert me["email_verified"] is True
    # Later sign-ins carry no user field: the name stays, the same user signs in.
    again = sign_in(client, apple)
    assert access_claims(again)["sub"] == me["id"]
    me_again = client.get("/api/v1/auth/me", headers=bearer(again["access_token"])).json["user"]
    assert me_again["name"] == "Ada Lovelace"


def test_client_secret_is_a_short_lived_es256_jwt(apple_app, apple):
    sign_in(apple_app.test_client(), apple)
    [(header, claims)] = apple.client_secrets
    assert header["alg"] == "ES256"
    assert header["kid"] == KEY_ID
    assert claims["iss"] == TEAM_ID
    assert claims["sub"] == CLIENT_ID
    assert claims["aud"] == APPLE_ISSUER
    assert 0 < claims["exp"] - claims["iat"] <= 600
    assert claims["exp"] > time.time()
    [form] = apple.token_forms
    assert s256(form["code_verifier"]) == apple.challenge


def test_nonce_in_apple_id_token_must_match(apple_app, apple):
    client = apple_app.test_client()
    params = authorize(client, apple)
    apple.nonce = "a-different-nonce"
    apple.challenge = params["code_challenge"]
    response = client.post(
        "/api/v1/oauth/apple/callback", data={"code": apple.code, "state": params["state"]}
    )
    assert query(response.headers["Location"]) == {"error": "token_invalid"}


def test_user_cancel_comes_back_to_the_client(apple_app, apple):
    client = apple_app.test_client()
    state = authorize(client, apple)["state"]
    response = client.post(
        "/api/v1/oauth/apple/callback", data={"error": "user_cancelled_authorize", "state": state}
    )
    assert query(response.headers["Location"]) == {"error": "user_cancelled_authorize"}


def test_malformed_user_field_is_ignored(apple_app, apple):
    client = apple_app.test_client()
    params = authorize(client, apple)
    response = client.post(
        "/api/v1/oauth/apple/callback",
        data={"code": apple.code, "state": params["state"], "user": "{not json"},
    )
    answer = query(response.headers["Location"])
    pair = client.post("/api/v1/oauth/exchange", json={"code": answer["code"]}).json
    me = client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])).json["user"]
    assert me["name"] is None


def test_missing_apple_key_is_an_upstream_error_not_a_500(app, signing_key_pem, httpserver, apple):
    incomplete = make_app(
        signing_key_pem,
        APPLE_CLIENT_ID=CLIENT_ID,
        APPLE_DISCOVERY_URL=httpserver.url_for("/apple/.well-known/openid-configuration"),
        OAUTH_REDIRECT_ALLOWLIST=[CLIENT_REDIRECT],
        OAUTH_CALLBACK_BASE_URL=OUR_BASE,
    )
    assert form_post(incomplete.test_client(), apple) == {"error": "upstream_error"}
    with incomplete.app_context():
        db.engine.dispose()


# --- native apps: Apple id_tokens verified against the (fake) Apple JWKS ---------------------


def native(client, token: str, **extra: str) -> Any:
    return client.post("/api/v1/oauth/apple/token", json={"id_token": token, **extra})


def test_native_id_token_for_the_app_bundle_signs_in(apple_app, apple):
    client = apple_app.test_client()
    response = native(client, apple.id_token(aud=BUNDLE_ID, nonce="n1"), nonce="n1", name="Ada L")
    assert response.status_code == 200, response.json
    claims = access_claims(response.json)
    assert claims["email"] == apple.email
    assert claims["email_verified"] is True
    me = client.get("/api/v1/auth/me", headers=bearer(response.json["access_token"])).json
    assert me["user"]["name"] == "Ada L"


def test_native_id_token_signed_by_another_key_is_refused(apple_app, apple):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    token = jwt.encode(
        {"iss": APPLE_ISSUER, "aud": BUNDLE_ID, "sub": "x", "iat": now, "exp": now + 60},
        other,
        algorithm="RS256",
        headers={"kid": APPLE_KID},
    )
    response = native(apple_app.test_client(), token)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_invalid"


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "com.someone.else"},
        {"iss": "https://accounts.google.com"},
        {"sub": None},
    ],
)
def test_native_id_token_claims_are_checked(apple_app, apple, overrides):
    response = native(apple_app.test_client(), apple.id_token(**overrides))
    assert response.status_code == 401


def test_native_expired_id_token_is_refused(apple_app, apple):
    now = int(time.time())
    response = native(apple_app.test_client(), apple.id_token(iat=now - 7200, exp=now - 3600))
    assert response.json["error"]["code"] == "token_expired"


def test_unverified_apple_email_is_not_trusted_as_verified(apple_app, apple):
    response = native(apple_app.test_client(), apple.id_token(email_verified="false"))
    assert response.status_code == 403  # and so it creates no account holding the address
    assert response.json["error"]["code"] == "oauth_email_unverified"


def test_discovery_and_jwks_are_cached(apple_app, apple, httpserver):
    client = apple_app.test_client()
    for nonce in ("a", "b", "c"):
        assert native(client, apple.id_token(nonce=nonce), nonce=nonce).status_code == 200
    paths = [request.path for request, _response in httpserver.log]
    assert paths.count("/apple/.well-known/openid-configuration") == 1
    assert paths.count("/apple/auth/keys") == 1


def test_cache_ttl_zero_fetches_every_time(app, signing_key_pem, httpserver, apple):
    uncached = make_app(
        signing_key_pem,
        APPLE_CLIENT_ID=CLIENT_ID,
        APPLE_DISCOVERY_URL=httpserver.url_for("/apple/.well-known/openid-configuration"),
        OAUTH_METADATA_CACHE_TTL=0,
    )
    client = uncached.test_client()
    for _ in range(2):
        assert native(client, apple.id_token()).status_code == 200
    paths = [request.path for request, _response in httpserver.log]
    assert paths.count("/apple/.well-known/openid-configuration") == 2
    with uncached.app_context():
        db.engine.dispose()


# --- the browser binding: Apple's answer is a cross-site form POST ---------------------------


def test_authorize_binds_the_browser_with_a_same_site_none_cookie(apple_app, apple):
    response = apple_app.test_client().get(
        "/api/v1/oauth/apple/authorize", query_string={"redirect_uri": CLIENT_REDIRECT}
    )
    [header] = response.headers.getlist("Set-Cookie")
    name, _, rest = header.partition("=")
    # Its own name: a Lax cookie of a Google flow in the same browser does not replace it.
    assert name == "__Secure-oauth_binding_post"
    attributes = {part.strip().lower() for part in rest.split(";")[1:]}
    assert {"secure", "httponly", "samesite=none", "path=/api/v1/oauth/", "max-age=600"} <= (
        attributes
    )


def test_form_post_in_another_browser_signs_nobody_in(apple_app, apple):
    started_in = apple_app.test_client()
    form = {"code": apple.code, "state": authorize(started_in, apple)["state"]}
    response = apple_app.test_client().post("/api/v1/oauth/apple/callback", data=form)
    assert response.status_code == 302
    assert query(response.headers["Location"]) == {"error": "invalid_request"}
    assert apple.token_forms == []  # the provider's code was not even redeemed
