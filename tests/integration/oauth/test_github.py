"""GitHub against a local fake (pytest-httpserver), through the real client code."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from werkzeug import Request, Response

from auth_microservice_app.extensions import db
from auth_microservice_app.models import User
from tests.conftest import make_app
from tests.integration.oauth.conftest import (
    CLIENT_REDIRECT,
    OUR_BASE,
    access_claims,
    query,
    s256,
)

pytestmark = pytest.mark.integration
CALLBACK = f"{OUR_BASE}/api/v1/oauth/github/callback"
ACCESS_TOKEN = "gho_fake_access_token"
VERIFIER = "github-native-verifier-" + "z" * 30
PRIMARY_VERIFIED = [
    {"email": "old@example.com", "primary": False, "verified": True, "visibility": None},
    {"email": "octo@example.com", "primary": True, "verified": True, "visibility": "public"},
    {"email": "new@example.com", "primary": False, "verified": False, "visibility": None},
]


class FakeGitHub:
    """GitHub's token endpoint, /user and /user/emails; checks what our client sends."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.code = "github-code-1"
        self.challenge: str | None = None
        self.redirect_uri = CALLBACK
        self.emails: list[dict[str, Any]] = PRIMARY_VERIFIED
        self.token_forms: list[dict[str, str]] = []
        self.token_status = 200
        server.expect_request("/login/oauth/access_token", method="POST").respond_with_handler(
            self._token
        )
        server.expect_request("/api/user").respond_with_handler(self._user)
        server.expect_request("/api/user/emails").respond_with_handler(self._emails)

    def _token(self, request: Request) -> Response:
        form = request.form.to_dict()
        self.token_forms.append(form)
        if self.token_status != 200:
            return Response("upstream trouble", status=self.token_status)
        ok = (
            form.get("grant_type") == "authorization_code"
            and form.get("client_id") == "gh-client"
            and form.get("client_secret") == "gh-secret"
            and form.get("code") == self.code
            and form.get("redirect_uri") == self.redirect_uri
            and self.challenge is not None
            and s256(form.get("code_verifier", "")) == self.challenge
        )
        body = (
            {"access_token": ACCESS_TOKEN, "token_type": "bearer", "scope": "read:user,user:email"}
            if ok
            else {"error": "bad_verification_code", "error_description": "bad code"}
        )
        return Response(json.dumps(body), content_type="application/json")

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}"

    def _user(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response("{}", status=401, content_type="application/json")
        body = {"id": 583231, "login": "octocat", "name": "The Octocat"}
        return Response(json.dumps(body), content_type="application/json")

    def _emails(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response("{}", status=401, content_type="application/json")
        return Response(json.dumps(self.emails), content_type="application/json")


@pytest.fixture
def github(httpserver: HTTPServer) -> FakeGitHub:
    return FakeGitHub(httpserver)


@pytest.fixture
def github_app(app: Flask, signing_key_pem: str, httpserver: HTTPServer):
    application = make_app(
        signing_key_pem,
        GITHUB_CLIENT_ID="gh-client",
        GITHUB_CLIENT_SECRET="gh-secret",
        GITHUB_AUTHORIZE_URL=httpserver.url_for("/login/oauth/authorize"),
        GITHUB_TOKEN_URL=httpserver.url_for("/login/oauth/access_token"),
        GITHUB_API_URL=httpserver.url_for("/api"),
        OAUTH_REDIRECT_ALLOWLIST=[CLIENT_REDIRECT],
        OAUTH_CALLBACK_BASE_URL=OUR_BASE,
    )
    yield application
    with application.app_context():
        db.engine.dispose()


def authorize(client, github: FakeGitHub) -> dict[str, str]:
    response = client.get(
        "/api/v1/oauth/github/authorize?" + urlencode({"redirect_uri": CLIENT_REDIRECT})
    )
    assert response.status_code == 302
    params = query(response.headers["Location"])
    github.challenge = params.get("code_challenge")
    return params


def callback(client, github: FakeGitHub) -> dict[str, str]:
    state = authorize(client, github)["state"]
    response = client.get(
        "/api/v1/oauth/github/callback", query_string={"code": github.code, "state": state}
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(CLIENT_REDIRECT + "?")
    return query(response.headers["Location"])


def test_authorize_goes_to_github_with_pkce(github_app, github, httpserver):
    location = (
        github_app.test_client()
        .get("/api/v1/oauth/github/authorize", query_string={"redirect_uri": CLIENT_REDIRECT})
        .headers["Location"]
    )
    assert location.startswith(httpserver.url_for("/login/oauth/authorize") + "?")
    params = query(location)
    assert params["client_id"] == "gh-client"
    assert params["redirect_uri"] == CALLBACK
    assert params["code_challenge_method"] == "S256"
    assert set(params["scope"].split()) == {"read:user", "user:email"}
    assert "nonce" not in params


def test_github_sign_in_uses_the_primary_verified_email(github_app, github):
    client = github_app.test_client()
    answer = callback(client, github)
    assert set(answer) == {"code"}
    pair = client.post("/api/v1/oauth/exchange", json={"code": answer["code"]}).json
    claims = access_claims(pair)
    assert claims["email"] == "octo@example.com"
    assert claims["email_verified"] is True
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.json["user"]["name"] == "The Octocat"
    # our client sent the verifier, the secret and the code in the body
    [form] = github.token_forms
    assert s256(form["code_verifier"]) == github.challenge
    assert form["client_secret"] == "gh-secret"


def test_github_identity_is_its_numeric_id(github_app, github):
    client = github_app.test_client()
    first = callback(client, github)["code"]
    sub = access_claims(client.post("/api/v1/oauth/exchange", json={"code": first}).json)["sub"]
    github.emails = [{"email": "renamed@example.com", "primary": True, "verified": True}]
    second = callback(client, github)["code"]
    again = client.post("/api/v1/oauth/exchange", json={"code": second}).json
    assert access_claims(again)["sub"] == sub


@pytest.mark.parametrize(
    "emails",
    [
        [],
        [{"email": "octo@example.com", "primary": True, "verified": False}],
        [
            {"email": "octo@example.com", "primary": True, "verified": False},
            {"email": "other@example.com", "primary": False, "verified": True},
        ],
    ],
)
def test_no_primary_verified_email_is_refused(github_app, github, emails):
    github.emails = emails
    assert callback(github_app.test_client(), github) == {"error": "oauth_email_unverified"}
    with github_app.app_context():
        assert db.session.execute(select(func.count()).select_from(User)).scalar_one() == 0


def test_secondary_verified_email_never_links_a_local_account(github_app, github):
    client = github_app.test_client()
    client.post(
        "/api/v1/auth/register",
        json={"email": "other@example.com", "password": "correct horse battery staple"},
    )
    github.emails = [
        {"email": "octo@example.com", "primary": True, "verified": False},
        {"email": "other@example.com", "primary": False, "verified": True},
    ]
    assert callback(client, github) == {"error": "oauth_email_unverified"}


def test_refused_code_comes_back_as_invalid_token(github_app, github):
    github.code = "another-code"  # the code we present is no longer what GitHub expects
    client = github_app.test_client()
    state = authorize(client, github)["state"]
    response = client.get(
        "/api/v1/oauth/github/callback", query_string={"code": "github-code-1", "state": state}
    )
    assert query(response.headers["Location"]) == {"error": "invalid_token"}


def test_github_outage_comes_back_as_upstream_error(github_app, github):
    github.token_status = 503
    assert callback(github_app.test_client(), github) == {"error": "upstream_error"}


def test_github_unreachable_comes_back_as_upstream_error(app, signing_key_pem, httpserver):
    unreachable = make_app(
        signing_key_pem,
        GITHUB_CLIENT_ID="gh-client",
        GITHUB_CLIENT_SECRET="gh-secret",
        GITHUB_TOKEN_URL="http://127.0.0.1:1/token",
        OAUTH_REDIRECT_ALLOWLIST=[CLIENT_REDIRECT],
        OAUTH_CALLBACK_BASE_URL=OUR_BASE,
    )
    client = unreachable.test_client()
    location = client.get(
        "/api/v1/oauth/github/authorize", query_string={"redirect_uri": CLIENT_REDIRECT}
    ).headers["Location"]
    response = client.get(
        "/api/v1/oauth/github/callback",
        query_string={"code": "c", "state": query(location)["state"]},
    )
    assert response.status_code == 302
    assert query(response.headers["Location"]) == {"error": "upstream_error"}
    with unreachable.app_context():
        db.engine.dispose()


def test_native_code_flow_with_github(github_app, github):
    github.challenge = s256(VERIFIER)
    github.redirect_uri = "com.example.app:/oauth"
    response = github_app.test_client().post(
        "/api/v1/oauth/github/token",
        json={"code": github.code, "code_verifier": VERIFIER, "redirect_uri": github.redirect_uri},
    )
    assert response.status_code == 200, response.json
    assert access_claims(response.json)["email"] == "octo@example.com"


def test_github_has_no_id_token_sign_in(github_app):
    response = github_app.test_client().post(
        "/api/v1/oauth/github/token", json={"id_token": "eyJ.x.y"}
    )
    assert response.status_code == 422
    assert "id_token" in response.json["error"]["details"]
