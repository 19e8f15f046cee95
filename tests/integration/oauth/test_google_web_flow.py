"""The browser flow end to end against a real OpenID provider on loopback (as "Google")."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from auth_microservice_app.auth import services as auth_services
from auth_microservice_app.auth.services import MfaChallenge
from auth_microservice_app.extensions import db
from auth_microservice_app.models import OAuthAccount, OAuthState, User
from auth_microservice_app.utils.redis_client import OAUTH_ONE_TIME_PREFIX
from tests.conftest import make_app
from tests.integration.oauth.conftest import (
    CALLBACK,
    CLIENT_ID,
    CLIENT_REDIRECT,
    GoogleFlow,
    OidcProvider,
    access_claims,
    bearer,
    drive_provider,
    google_settings,
    query,
    s256,
)

pytestmark = pytest.mark.integration


def state_key(state: str) -> str:
    return OAUTH_ONE_TIME_PREFIX + "state:" + hashlib.sha256(state.encode()).hexdigest()


def count(app: Flask, model) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


def test_web_flow_signs_up_then_signs_in_the_same_user(google_flow: GoogleFlow, google_client):
    pair = google_flow.sign_in("verified")
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    me = google_client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    user = me.json["user"]
    assert (user["email"], user["email_verified"], user["name"]) == (
        "vera@example.com",
        True,
        "Vera Verified",
    )
    assert access_claims(pair)["amr"] == ["oauth"]

    again = google_flow.sign_in("verified")
    assert access_claims(again)["sub"] == user["id"]
    accounts = google_client.get("/api/v1/oauth/accounts", headers=bearer(again["access_token"]))
    assert accounts.status_code == 200
    assert accounts.headers["Cache-Control"] == "no-store"
    [account] = accounts.json["accounts"]
    assert account["provider"] == "google"
    assert account["email"] == "vera@example.com"
    assert account["email_verified"] is True
    assert account["last_login_at"].endswith("Z")


def test_new_user_from_oauth_has_no_password(google_flow: GoogleFlow, google_app: Flask):
    google_flow.sign_in("verified")
    with google_app.app_context():
        user = db.session.execute(select(User)).scalar_one()
        assert user.password_hash is None
        assert user.email_verified_at is not None


def test_unverified_provider_email_creates_no_user(google_flow: GoogleFlow, google_app: Flask):
    # An account holds its address; one the provider does not vouch for is nobody's yet.
    assert google_flow.client_redirect("unverified") == {"error": "oauth_email_unverified"}
    with google_app.app_context():
        assert db.session.execute(select(User)).first() is None


def test_authorize_redirects_with_state_nonce_and_s256_challenge(
    google_flow: GoogleFlow, oidc_provider: OidcProvider, redis_client
):
    location = google_flow.authorize()
    assert location.startswith(oidc_provider.metadata()["authorization_endpoint"] + "?")
    params = query(location)
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == CALLBACK
    assert params["response_type"] == "code"
    assert set(params["scope"].split()) == {"openid", "email", "profile"}
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 43 and len(params["nonce"]) >= 43
    # Server-side: the verifier behind the challenge, the nonce and the client's redirect URI,
    # under a hash of the state, expiring.
    raw = redis_client.get(state_key(params["state"]))
    assert raw is not None
    flow = json.loads(raw)
    assert s256(flow["code_verifier"]) == params["code_challenge"]
    assert flow["nonce"] == params["nonce"]
    assert flow["redirect_uri"] == CLIENT_REDIRECT
    assert 0 < redis_client.ttl(state_key(params["state"])) <= 600
    assert params["state"] not in raw


def test_each_authorization_gets_fresh_secrets(google_flow: GoogleFlow):
    first, second = query(google_flow.authorize()), query(google_flow.authorize())
    for name in ("state", "nonce", "code_challenge"):
        assert first[name] != second[name]


def test_client_state_is_echoed_back(google_flow: GoogleFlow):
    answer = google_flow.client_redirect("verified", state="spa-csrf-123")
    assert answer["state"] == "spa-csrf-123"
    assert "code" in answer


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example.com/oauth/done",
        CLIENT_REDIRECT + "/",
        CLIENT_REDIRECT + "?x=1",
        "HTTPS://APP.EXAMPLE.COM/oauth/done",
    ],
)
def test_redirect_uri_must_match_the_allow_list_exactly(google_client, redirect_uri):
    response = google_client.get(
        "/api/v1/oauth/google/authorize", query_string={"redirect_uri": redirect_uri}
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"
    assert "redirect_uri" in response.json["error"]["details"]


def test_missing_redirect_uri_is_400(google_client):
    response = google_client.get("/api/v1/oauth/google/authorize")
    assert response.status_code == 400
    assert response.json["error"]["details"]["redirect_uri"]


def test_replayed_state_is_refused(google_flow: GoogleFlow):
    url = google_flow.callback_url("verified")
    first = google_flow.callback(url)
    assert first.status_code == 302
    assert "code" in query(first.headers["Location"])
    replay = google_flow.callback(url)
    assert replay.status_code == 400
    assert replay.json["error"]["code"] == "bad_request"


@pytest.mark.parametrize("params", ["state=forged&code=abc", "code=abc", "state=&code=abc"])
def test_unknown_or_missing_state_is_refused(google_client, params):
    response = google_client.get(f"/api/v1/oauth/google/callback?{params}")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"


def test_state_of_another_provider_flow_is_not_accepted(oidc_provider, signing_key_pem, app):
    # the same state replayed on another provider's callback answers the client with an error
    github_app = make_app(
        signing_key_pem,
        **google_settings(oidc_provider, GITHUB_CLIENT_ID="gh", GITHUB_CLIENT_SECRET="s"),
    )
    client = github_app.test_client()
    state = query(GoogleFlow(client).authorize())["state"]
    response = client.get("/api/v1/oauth/github/callback", query_string={"state": state})
    assert response.status_code == 302
    assert query(response.headers["Location"])["error"] == "invalid_request"
    with github_app.app_context():
        db.engine.dispose()


def test_nonce_mismatch_is_refused(google_flow: GoogleFlow, redis_client, google_app):
    location = google_flow.authorize()
    state = query(location)["state"]
    flow = json.loads(redis_client.get(state_key(state)))
    flow["nonce"] = "not-the-nonce-that-was-sent"
    redis_client.set(state_key(state), json.dumps(flow), ex=600)
    response = google_flow.callback(drive_provider(location, stop_at=CALLBACK))
    assert response.status_code == 302
    assert query(response.headers["Location"]) == {"error": "token_invalid"}
    assert count(google_app, User) == 0


def test_wrong_pkce_verifier_is_refused_by_the_provider(
    google_flow: GoogleFlow, redis_client, google_app
):
    # The provider requires PKCE S256; swapping the stored verifier makes it refuse the code,
    # so the successful flows above prove that the right verifier is what we send.
    location = google_flow.authorize()
    state = query(location)["state"]
    flow = json.loads(redis_client.get(state_key(state)))
    flow["code_verifier"] = "x" * 64
    redis_client.set(state_key(state), json.dumps(flow), ex=600)
    response = google_flow.callback(drive_provider(location, stop_at=CALLBACK))
    assert response.status_code == 302
    assert query(response.headers["Location"]) == {"error": "invalid_token"}
    assert count(google_app, User) == 0


def test_provider_error_comes_back_to_the_client(google_flow: GoogleFlow):
    location = google_flow.authorize(state="client-state")
    url = drive_provider(location, stop_at=CALLBACK, abort=True)
    assert query(url)["error"] == "access_denied"
    response = google_flow.callback(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(CLIENT_REDIRECT + "?")
    assert query(response.headers["Location"]) == {
        "error": "access_denied",
        "state": "client-state",
    }


def test_unexpected_provider_error_text_is_not_reflected(google_flow: GoogleFlow):
    state = query(google_flow.authorize())["state"]
    response = google_flow.client.get(
        "/api/v1/oauth/google/callback",
        query_string={"state": state, "error": "<script>alert(1)</script>"},
    )
    assert query(response.headers["Location"]) == {"error": "server_error"}


def test_one_time_code_is_single_use(google_flow: GoogleFlow):
    code = google_flow.client_redirect("verified")["code"]
    assert google_flow.exchange(code).status_code == 200
    again = google_flow.exchange(code)
    assert again.status_code == 400
    assert again.json["error"]["code"] == "invalid_token"


def test_one_time_code_expires_after_sixty_seconds(google_flow: GoogleFlow, redis_client):
    code = google_flow.client_redirect("verified")["code"]
    key = OAUTH_ONE_TIME_PREFIX + "code:" + hashlib.sha256(code.encode()).hexdigest()
    assert 0 < redis_client.ttl(key) <= 60
    assert code not in redis_client.get(key)


def test_unknown_one_time_code_is_invalid(google_flow: GoogleFlow):
    response = google_flow.exchange("made-up")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_token"


def test_one_time_code_is_spent_once_under_concurrency(google_flow: GoogleFlow, google_app):
    code = google_flow.client_redirect("verified")["code"]
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def spend() -> None:
        client = google_app.test_client()
        barrier.wait(timeout=10)
        statuses.append(client.post("/api/v1/oauth/exchange", json={"code": code}).status_code)

    threads = [threading.Thread(target=spend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200] + [400] * 5


def test_exchange_passes_an_mfa_challenge_through_unchanged(google_flow: GoogleFlow, monkeypatch):
    challenge = MfaChallenge(mfa_token="mfa-token-123", methods=["totp", "backup_code"])
    monkeypatch.setattr(auth_services, "sign_in", lambda user, client, *, amr: challenge)
    code = google_flow.client_redirect("verified")["code"]
    response = google_flow.exchange(code)
    assert response.status_code == 200
    assert response.json == {
        "mfa_required": True,
        "mfa_token": "mfa-token-123",
        "methods": ["totp", "backup_code"],
    }


def test_exchange_asks_sign_in_for_the_oauth_amr(google_flow: GoogleFlow, monkeypatch):
    seen: list[list[str]] = []
    real = auth_services.sign_in

    def spy(user, client, *, amr):
        seen.append(amr)
        return real(user, client, amr=amr)

    monkeypatch.setattr(auth_services, "sign_in", spy)
    google_flow.sign_in("verified")
    assert seen == [["oauth"]]


def test_disabled_user_gets_an_error_not_a_code(google_flow: GoogleFlow, google_app):
    google_flow.sign_in("verified")
    with google_app.app_context():
        db.session.execute(select(User)).scalar_one().is_active = False
        db.session.commit()
    assert google_flow.client_redirect("verified") == {"error": "account_disabled"}


def test_callback_code_never_reaches_the_logs(google_flow: GoogleFlow, caplog):
    url = google_flow.callback_url("verified")
    code, state = query(url)["code"], query(url)["state"]
    with caplog.at_level(logging.INFO):
        response = google_flow.callback(url)
    one_time = query(response.headers["Location"])["code"]
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert "/api/v1/oauth/google/callback" in logged
    for secret in (code, state, one_time):
        assert secret not in logged


# --- Redis down: the database holds state and codes ------------------------------------------


@pytest.fixture
def no_redis_app(app, signing_key_pem, oidc_provider):
    application = make_app(
        signing_key_pem,
        **google_settings(oidc_provider, REDIS_URL="redis://127.0.0.1:1/0"),
    )
    yield application
    with application.app_context():
        db.engine.dispose()


def test_flow_works_with_redis_down(no_redis_app: Flask, redis_client):
    flow = GoogleFlow(no_redis_app.test_client())
    pair = flow.sign_in("verified")
    assert access_claims(pair)["email"] == "vera@example.com"
    assert not redis_client.keys(OAUTH_ONE_TIME_PREFIX + "*")


def test_state_in_the_database_is_single_use(no_redis_app: Flask):
    flow = GoogleFlow(no_redis_app.test_client())
    url = flow.callback_url("verified")
    assert flow.callback(url).status_code == 302
    assert flow.callback(url).status_code == 400


def test_one_time_code_in_the_database_expires(no_redis_app: Flask):
    flow = GoogleFlow(no_redis_app.test_client())
    code = flow.client_redirect("verified")["code"]
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61), tick=False):
        response = flow.exchange(code)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_token"


def test_one_time_code_in_the_database_is_spent_once_under_concurrency(no_redis_app: Flask):
    code = GoogleFlow(no_redis_app.test_client()).client_redirect("verified")["code"]
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def spend() -> None:
        client = no_redis_app.test_client()
        barrier.wait(timeout=10)
        statuses.append(client.post("/api/v1/oauth/exchange", json={"code": code}).status_code)

    threads = [threading.Thread(target=spend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200] + [400] * 5


def test_code_stored_in_the_database_only_as_a_hash(no_redis_app: Flask):
    code = GoogleFlow(no_redis_app.test_client()).client_redirect("verified")["code"]
    with no_redis_app.app_context():
        keys = db.session.execute(select(OAuthState.key)).scalars().all()
    assert keys == ["code:" + hashlib.sha256(code.encode()).hexdigest()]


def test_one_account_row_per_identity(google_flow: GoogleFlow, google_app):
    google_flow.sign_in("verified")
    google_flow.sign_in("verified")
    assert count(google_app, OAuthAccount) == 1
    assert count(google_app, User) == 1
