"""PKCE between the client and this service (RFC 7636, ASVS 10.4.6): a one-time ``code`` that
leaks on its way to the client (history, logs, a Referer) is useless without the verifier."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import UserSession
from auth_microservice_app.oauth import flows as services
from auth_microservice_app.utils.redis_client import OAUTH_ONE_TIME_PREFIX
from tests.conftest import make_app
from tests.integration.oauth.conftest import (
    CLIENT_REDIRECT,
    GoogleFlow,
    OidcProvider,
    google_settings,
    query,
    s256,
)

pytestmark = pytest.mark.integration

VERIFIER = "client-pkce-verifier-" + "a1B2c3D4e5" * 4  # 61 characters of the RFC 7636 set
OTHER_VERIFIER = "client-pkce-verifier-" + "z9Y8x7W6v5" * 4


def pkce(verifier: str = VERIFIER) -> dict[str, str]:
    return {"code_challenge": s256(verifier), "code_challenge_method": "S256"}


def exchange(flow: GoogleFlow, code: str, verifier: str | None = None):
    body = {"code": code} if verifier is None else {"code": code, "code_verifier": verifier}
    return flow.client.post("/api/v1/oauth/exchange", json=body)


def assert_invalid_token(response) -> None:
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_token"
    assert "access_token" not in response.json


def sessions(app: Flask) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(UserSession)).scalar_one())


def test_exchange_with_the_right_verifier_signs_in(google_flow: GoogleFlow):
    code = google_flow.client_redirect("verified", **pkce())["code"]
    response = exchange(google_flow, code, VERIFIER)
    assert response.status_code == 200, response.json
    assert set(response.json) >= {"access_token", "refresh_token"}


def test_stolen_code_without_the_verifier_is_refused_and_spent(google_flow: GoogleFlow, google_app):
    code = google_flow.client_redirect("verified", **pkce())["code"]
    assert_invalid_token(exchange(google_flow, code))
    # spent: the right verifier does not revive it (no retry oracle)
    assert_invalid_token(exchange(google_flow, code, VERIFIER))
    assert sessions(google_app) == 0


def test_wrong_verifier_is_refused_and_spends_the_code(google_flow: GoogleFlow, google_app):
    code = google_flow.client_redirect("verified", **pkce())["code"]
    assert_invalid_token(exchange(google_flow, code, OTHER_VERIFIER))
    assert_invalid_token(exchange(google_flow, code, VERIFIER))
    assert sessions(google_app) == 0


def test_verifier_for_a_code_issued_without_a_challenge_is_refused(
    google_flow: GoogleFlow, google_app
):
    code = google_flow.client_redirect("verified")["code"]
    assert_invalid_token(exchange(google_flow, code, VERIFIER))
    assert sessions(google_app) == 0


def test_code_without_a_challenge_still_works_without_a_verifier(google_flow: GoogleFlow):
    code = google_flow.client_redirect("verified")["code"]
    assert exchange(google_flow, code).status_code == 200


def test_challenge_is_kept_with_the_flow_and_then_with_the_code(google_flow, redis_client):
    state = query(google_flow.authorize(**pkce()))["state"]
    key = OAUTH_ONE_TIME_PREFIX + "state:" + hashlib.sha256(state.encode()).hexdigest()
    flow = services.unpack_flow(json.loads(redis_client.get(key)))
    assert flow["code_challenge"] == s256(VERIFIER)
    code = google_flow.client_redirect("verified", **pkce())["code"]
    key = OAUTH_ONE_TIME_PREFIX + "code:" + hashlib.sha256(code.encode()).hexdigest()
    assert json.loads(redis_client.get(key))["code_challenge"] == s256(VERIFIER)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (
            {"code_challenge": s256(VERIFIER), "code_challenge_method": "plain"},
            "code_challenge_method",
        ),
        (
            {"code_challenge": s256(VERIFIER), "code_challenge_method": "s256"},
            "code_challenge_method",
        ),
        ({"code_challenge": s256(VERIFIER)}, "code_challenge_method"),  # RFC 7636 default: plain
        ({"code_challenge_method": "S256"}, "code_challenge"),
        ({"code_challenge": VERIFIER, "code_challenge_method": "S256"}, "code_challenge"),
        (
            {"code_challenge": s256(VERIFIER)[:42], "code_challenge_method": "S256"},
            "code_challenge",
        ),
        (
            {"code_challenge": s256(VERIFIER) + "=", "code_challenge_method": "S256"},
            "code_challenge",
        ),
        ({"code_challenge": "+" * 43, "code_challenge_method": "S256"}, "code_challenge"),
    ],
)
def test_authorize_accepts_only_an_s256_challenge(google_client, redis_client, params, field):
    response = google_client.get(
        "/api/v1/oauth/google/authorize", query_string={"redirect_uri": CLIENT_REDIRECT, **params}
    )
    assert response.status_code == 422, response.headers.get("Location")
    assert response.json["error"]["code"] == "validation_error"
    assert field in response.json["error"]["details"]
    assert redis_client.keys(OAUTH_ONE_TIME_PREFIX + "*") == []  # no flow was started


@pytest.mark.parametrize("verifier", ["short", "x" * 129, "has space" + "x" * 40, "é" * 43])
def test_malformed_verifier_is_422(google_flow: GoogleFlow, verifier):
    code = google_flow.client_redirect("verified", **pkce())["code"]
    response = exchange(google_flow, code, verifier)
    assert response.status_code == 422
    assert "code_verifier" in response.json["error"]["details"]


# --- Redis down: the challenge travels through the database ----------------------------------


@pytest.fixture
def no_redis_flow(
    app: Flask, signing_key_pem: str, oidc_provider: OidcProvider
) -> Iterator[GoogleFlow]:
    application = make_app(
        signing_key_pem, **google_settings(oidc_provider, REDIS_URL="redis://127.0.0.1:1/0")
    )
    yield GoogleFlow(application.test_client())
    with application.app_context():
        db.engine.dispose()


def test_challenge_is_checked_with_redis_down(no_redis_flow: GoogleFlow):
    code = no_redis_flow.client_redirect("verified", **pkce())["code"]
    assert_invalid_token(exchange(no_redis_flow, code, OTHER_VERIFIER))
    code = no_redis_flow.client_redirect("verified", **pkce())["code"]
    assert exchange(no_redis_flow, code, VERIFIER).status_code == 200
