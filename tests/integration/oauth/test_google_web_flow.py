"""The browser flow end to end against a real OpenID provider on loopback (as "Google")."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from auth_microservice_app.extensions import db
from auth_microservice_app.identity import signin as auth_services
from auth_microservice_app.identity.challenges import MfaChallenge
from auth_microservice_app.models import OAuthAccount, OAuthState, User
from auth_microservice_app.oauth import flows as services
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
    login,
    query,
    register,
    s256,
    start_link,
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
    google_flow: GoogleFlow, oidc_provider: OidcProvider, redis_client, google_app: Flask
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
    # The verifier behind the challenge and the nonce are derived from the state with a key
    # of the service; the client's redirect URI is kept under a hash of the state, expiring.
    with google_app.app_context():
        verifier = services.flow_secret(services.CODE_VERIFIER, params["state"])
        assert services.flow_secret(services.NONCE, params["state"]) == params["nonce"]
    assert s256(verifier) == params["code_challenge"]
    raw = redis_client.get(state_key(params["state"]))
    assert raw is not None
    assert services.unpack_flow(json.loads(raw))["redirect_uri"] == CLIENT_REDIRECT
    assert 0 < redis_client.ttl(state_key(params["state"])) <= 600
    for secret in (params["state"], params["nonce"], verifier):
        assert secret not in raw


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


def swap_flow_secret(monkeypatch, purpose: str, value: str) -> None:
    """From now on the callback derives ``value`` as the flow's ``purpose`` secret."""
    derive = services.flow_secret
    monkeypatch.setattr(
        services, "flow_secret", lambda p, state: value if p == purpose else derive(p, state)
    )


def test_nonce_mismatch_is_refused(google_flow: GoogleFlow, google_app, monkeypatch):
    location = google_flow.authorize()
    swap_flow_secret(monkeypatch, services.NONCE, "not-the-nonce-that-was-sent")
    response = google_flow.callback(drive_provider(location, stop_at=CALLBACK))
    assert response.status_code == 302
    assert query(response.headers["Location"]) == {"error": "token_invalid"}
    assert count(google_app, User) == 0


def test_wrong_pkce_verifier_is_refused_by_the_provider(
    google_flow: GoogleFlow, google_app, monkeypatch
):
    # The provider requires PKCE S256; a callback deriving another verifier makes it refuse
    # the code, so the successful flows above prove that the right verifier is what we send.
    location = google_flow.authorize()
    swap_flow_secret(monkeypatch, services.CODE_VERIFIER, "x" * 64)
    response = google_flow.callback(drive_provider(location, stop_at=CALLBACK))
    assert response.status_code == 302
    assert query(response.headers["Location"]) == {"error": "invalid_token"}
    assert count(google_app, User) == 0


#: What Redis may hold per started flow (MEMORY USAGE of its key: key, value and overhead).
#: Before the nonce and verifier were derived: 584 bytes, 648 with a client state and PKCE,
#: 1,160 with a 512-character client state.
FLOW_BYTES_BOUND = 400


def _flow_bytes(redis_client, location: str) -> tuple[int, int]:
    key = state_key(query(location)["state"])
    return int(redis_client.memory_usage(key)), int(redis_client.strlen(key))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"state": "spa-csrf-3f9c2a7b41d05e86", "code_challenge": s256("v" * 43)},
    ],
    ids=["plain", "client_state_and_pkce"],
)
def test_a_started_sign_in_keeps_under_400_bytes_in_redis(
    google_flow: GoogleFlow, redis_client, params
):
    if params.get("code_challenge"):
        params = {**params, "code_challenge_method": "S256"}
    memory, stored = _flow_bytes(redis_client, google_flow.authorize(**params))
    assert memory < FLOW_BYTES_BOUND, (memory, stored)
    assert stored < 200


def test_a_started_link_keeps_under_400_bytes_in_redis(
    google_flow: GoogleFlow, google_app, redis_client
):
    register(google_flow.client, "ada@example.com", verified=True, app=google_app)
    access = login(google_flow.client, "ada@example.com")["access_token"]
    url = start_link(google_flow.client, access, state="link-1")
    memory, _stored = _flow_bytes(redis_client, url)
    assert memory < FLOW_BYTES_BOUND


def test_a_flow_stored_by_the_previous_release_still_finishes(
    google_flow: GoogleFlow, google_app, redis_client
):
    # The previous release stored every field by name, its nonce and verifier too, and the
    # binding's digest in hex: a sign-in under way at the deploy finishes on the new code,
    # with the stored nonce and verifier (a wrong stored nonce is refused).
    def to_previous_release(location: str, nonce: str | None = None) -> None:
        state = query(location)["state"]
        flow = services.unpack_flow(json.loads(redis_client.get(state_key(state))))
        with google_app.app_context():
            flow["nonce"] = nonce or services.flow_secret(services.NONCE, state)
            flow["code_verifier"] = services.flow_secret(services.CODE_VERIFIER, state)
        binding = flow["browser_binding"]
        flow["browser_binding"] = base64.urlsafe_b64decode(binding + "=").hex()
        redis_client.set(state_key(state), json.dumps(flow), ex=600)

    location = google_flow.authorize(state="spa-1")
    to_previous_release(location)
    answer = query(
        google_flow.callback(drive_provider(location, stop_at=CALLBACK)).headers["Location"]
    )
    assert set(answer) == {"code", "state"} and answer["state"] == "spa-1"
    assert google_flow.exchange(answer["code"]).status_code == 200

    location = google_flow.authorize()
    to_previous_release(location, nonce="a-nonce-the-provider-never-saw")
    refused = google_flow.callback(drive_provider(location, stop_at=CALLBACK))
    assert query(refused.headers["Location"]) == {"error": "token_invalid"}


def test_a_flow_started_under_another_secret_key_signs_nobody_in(
    oidc_provider, signing_key_pem, app, google_app
):
    # The nonce and verifier are derived under SECRET_KEY: a state alone is worth nothing.
    other = make_app(signing_key_pem, **google_settings(oidc_provider, SECRET_KEY="rotated-key"))
    try:
        client = other.test_client()
        location = GoogleFlow(client).authorize()
        callback = drive_provider(location, stop_at=CALLBACK)
        # the same browser (cookie jar), now answered by an app under the original key
        client.application = google_app
        answer = query(GoogleFlow(client).callback(callback).headers["Location"])
        assert answer == {"error": "invalid_token"}
        assert count(google_app, User) == 0
    finally:
        with other.app_context():
            db.engine.dispose()


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
