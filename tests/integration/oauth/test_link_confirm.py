"""Linking a provider: the callback links nothing; the user who started the link confirms it.

The attack this guards against: the attacker starts a link on his account and sends the
authorization URL to the victim; her browser, signed in at the provider, finishes the flow.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from auth_microservice_app.extensions import db
from auth_microservice_app.middleware.rate_limit import ENDPOINT_LIMITS
from auth_microservice_app.models import SecurityEvent
from auth_microservice_app.utils.redis_client import OAUTH_ONE_TIME_PREFIX
from tests.conftest import make_app
from tests.integration.oauth.conftest import (
    CALLBACK,
    CLIENT_REDIRECT,
    GoogleFlow,
    OidcProvider,
    access_claims,
    bearer,
    browser,
    confirm_link,
    drive_provider,
    google_settings,
    linked_accounts,
    local,
    login,
    query,
    register,
    set_email_verified,
    start_link,
)

pytestmark = pytest.mark.integration

VICTIM_AGENT, VICTIM_IP = "victim-browser/1.0", "198.51.100.7"
ATTACKER_AGENT, ATTACKER_IP = "attacker-browser/1.0", "203.0.113.66"


def finish_at_provider(client: FlaskClient, url: str, login_as: str = "verified") -> dict[str, str]:
    """Complete the provider's pages in ``client``'s browser; the query sent to the client."""
    response = client.get(local(drive_provider(url, login=login_as, stop_at=CALLBACK)))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    location = str(response.headers["Location"])
    assert location.startswith(CLIENT_REDIRECT + "?"), location
    return query(location)


@pytest.fixture
def attacker(google_app: Flask) -> FlaskClient:
    return browser(google_app, ATTACKER_AGENT, ATTACKER_IP)


@pytest.fixture
def victim(google_app: Flask) -> FlaskClient:
    return browser(google_app, VICTIM_AGENT, VICTIM_IP)


@pytest.fixture
def ada(google_app: Flask, attacker: FlaskClient) -> tuple[str, str]:
    """The initiator: a verified password account signed in in ``attacker``; (id, access)."""
    user_id = register(attacker, "ada@example.com", verified=True, app=google_app)
    return user_id, str(login(attacker, "ada@example.com")["access_token"])


def events_of(app: Flask, **where: object) -> list[SecurityEvent]:
    with app.app_context():
        rows = db.session.execute(select(SecurityEvent).filter_by(**where)).scalars().all()
        db.session.expunge_all()
    return list(rows)


# --- the attack ------------------------------------------------------------------------------


def test_link_finished_in_another_browser_links_nothing(google_app, attacker, victim, ada):
    ada_id, ada_access = ada
    url = start_link(attacker, ada_access, state="link-1")
    answer = finish_at_provider(victim, url)
    assert set(answer) == {"link_code", "state"}, answer
    assert answer["state"] == "link-1"
    assert linked_accounts(google_app) == []
    # Her "Sign in with Google" does not open his account.
    assert access_claims(GoogleFlow(victim).sign_in("verified"))["sub"] != ada_id


def test_the_victim_confirming_the_code_is_forbidden_and_spends_it(
    google_app, attacker, victim, ada
):
    _, ada_access = ada
    register(victim, "vera@example.com", verified=True, app=google_app)
    vera_access = login(victim, "vera@example.com")["access_token"]
    code = finish_at_provider(victim, start_link(attacker, ada_access))["link_code"]
    refused = confirm_link(victim, vera_access, code)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "forbidden"
    assert linked_accounts(google_app) == []
    # The code is spent: not even its initiator can use it now.
    again = confirm_link(attacker, ada_access, code)
    assert again.status_code == 400
    assert again.json["error"]["code"] == "invalid_token"
    assert linked_accounts(google_app) == []


def test_the_completing_browser_is_not_attributed_to_the_initiator(
    google_app, attacker, victim, ada
):
    ada_id, ada_access = ada
    finish_at_provider(victim, start_link(attacker, ada_access))
    from_victim = events_of(google_app, user_agent=VICTIM_AGENT)
    assert from_victim, "the callback records what happened"
    assert [e.user_id for e in from_victim] == [None] * len(from_victim)
    shown = attacker.get("/api/v1/auth/events", headers=bearer(ada_access)).json["events"]
    assert shown
    assert all(e["user_agent"] != VICTIM_AGENT and e["ip"] != VICTIM_IP for e in shown)


# --- the initiator's confirmation ------------------------------------------------------------


def test_the_initiator_confirms_the_link(google_app, attacker, ada):
    ada_id, ada_access = ada
    code = finish_at_provider(attacker, start_link(attacker, ada_access))["link_code"]
    assert linked_accounts(google_app) == []
    response = confirm_link(attacker, ada_access, code)
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    account = response.json["account"]
    assert (account["provider"], account["email"], account["email_verified"]) == (
        "google",
        "vera@example.com",
        True,
    )
    assert linked_accounts(google_app) == [("google", ada_id)]
    listed = attacker.get("/api/v1/oauth/accounts", headers=bearer(ada_access)).json
    assert listed == {"accounts": [account]}
    # oauth_linked is recorded by the initiator's own request
    [linked] = events_of(google_app, event="oauth_linked")
    assert (str(linked.user_id), linked.user_agent, linked.ip) == (
        ada_id,
        ATTACKER_AGENT,
        ATTACKER_IP,
    )
    assert linked.data["via"] == "link"
    # single use
    again = confirm_link(attacker, ada_access, code)
    assert again.status_code == 400
    assert again.json["error"]["code"] == "invalid_token"


def test_link_code_is_short_lived_single_use_and_stored_as_a_hash(
    google_app, attacker, ada, redis_client
):
    ada_id, ada_access = ada
    code = finish_at_provider(attacker, start_link(attacker, ada_access))["link_code"]
    assert len(code) >= 43
    key = OAUTH_ONE_TIME_PREFIX + "link:" + hashlib.sha256(code.encode()).hexdigest()
    raw = redis_client.get(key)
    assert raw is not None and code not in raw
    assert 0 < redis_client.ttl(key) <= 60
    payload = json.loads(raw)
    assert payload["user_id"] == ada_id
    assert payload["provider"] == "google"
    assert payload["subject"] == "verified"
    assert payload["email"] == "vera@example.com"
    assert payload["email_verified"] is True
    assert confirm_link(attacker, ada_access, code).status_code == 200
    assert redis_client.get(key) is None


@pytest.mark.parametrize("code", ["made-up", "x" * 43])
def test_unknown_link_code_is_invalid(google_app, attacker, ada, code):
    response = confirm_link(attacker, ada[1], code)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": "abc", "provider": "google"}])
def test_malformed_confirm_bodies_are_422(google_app, attacker, ada, body):
    response = attacker.post("/api/v1/oauth/link/confirm", json=body, headers=bearer(ada[1]))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"


def test_one_time_sign_in_code_is_not_a_link_code(google_flow: GoogleFlow, google_app):
    # The kinds are separate: a sign-in code from the callback cannot be confirmed as a link.
    register(google_flow.client, "ada@example.com", verified=True, app=google_app)
    access = login(google_flow.client, "ada@example.com")["access_token"]
    code = google_flow.client_redirect("other")["code"]
    response = confirm_link(google_flow.client, access, code)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_token"


def test_confirm_needs_an_access_token_and_is_not_a_provider_route(google_client):
    response = google_client.post("/api/v1/oauth/link/confirm", json={"code": "abc"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "authorization_required"
    assert google_client.get("/api/v1/oauth/link/confirm").status_code == 405


def test_confirm_needs_a_fresh_token(google_app, attacker, ada):
    _, ada_access = ada
    code = finish_at_provider(attacker, start_link(attacker, ada_access))["link_code"]
    tokens = login(attacker, "ada@example.com")
    refreshed = attacker.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    ).json["access_token"]
    response = confirm_link(attacker, refreshed, code)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "fresh_token_required"
    assert linked_accounts(google_app) == []


def test_identity_linked_to_another_user_is_409_at_confirm(
    google_flow: GoogleFlow, google_app, attacker, ada
):
    vera = access_claims(google_flow.sign_in("verified"))["sub"]  # her Google account is hers
    _, ada_access = ada
    code = finish_at_provider(attacker, start_link(attacker, ada_access))["link_code"]
    response = confirm_link(attacker, ada_access, code)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "oauth_already_linked"
    assert linked_accounts(google_app) == [("google", vera)]


def test_unverified_account_may_not_start_a_link(google_app, attacker):
    register(attacker, "ada@example.com", verified=False, app=google_app)
    access = login(attacker, "ada@example.com")["access_token"]
    response = attacker.post(
        "/api/v1/oauth/google/link",
        json={"redirect_uri": CLIENT_REDIRECT},
        headers=bearer(access),
    )
    assert response.status_code == 403
    assert response.json["error"]["code"] == "email_not_verified"


def test_unverified_account_may_not_confirm_a_link(google_app, attacker, ada):
    _, ada_access = ada
    code = finish_at_provider(attacker, start_link(attacker, ada_access))["link_code"]
    set_email_verified(google_app, "ada@example.com", False)
    response = confirm_link(attacker, ada_access, code)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "email_not_verified"
    assert linked_accounts(google_app) == []


# --- Redis down: the link code lives in the database -----------------------------------------


@pytest.fixture
def no_redis_app(app: Flask, signing_key_pem: str, oidc_provider: OidcProvider) -> Iterator[Flask]:
    application = make_app(
        signing_key_pem, **google_settings(oidc_provider, REDIS_URL="redis://127.0.0.1:1/0")
    )
    yield application
    with application.app_context():
        db.engine.dispose()


def test_link_code_in_the_database_expires(no_redis_app: Flask):
    client = browser(no_redis_app, ATTACKER_AGENT, ATTACKER_IP)
    register(client, "ada@example.com", verified=True, app=no_redis_app)
    access = login(client, "ada@example.com")["access_token"]
    code = finish_at_provider(client, start_link(client, access))["link_code"]
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61), tick=False):
        response = confirm_link(client, access, code)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_token"
    assert linked_accounts(no_redis_app) == []


def test_link_code_in_the_database_confirms_once(no_redis_app: Flask):
    client = browser(no_redis_app, ATTACKER_AGENT, ATTACKER_IP)
    user_id = register(client, "ada@example.com", verified=True, app=no_redis_app)
    access = login(client, "ada@example.com")["access_token"]
    code = finish_at_provider(client, start_link(client, access))["link_code"]
    assert confirm_link(client, access, code).status_code == 200
    assert confirm_link(client, access, code).status_code == 400
    assert linked_accounts(no_redis_app) == [("google", user_id)]


# --- rate limit ------------------------------------------------------------------------------


def test_confirm_is_rate_limited_like_the_exchange(app, signing_key_pem):
    assert ENDPOINT_LIMITS["oauth.link_confirm"] == ENDPOINT_LIMITS["oauth.exchange"]
    limited = make_app(
        signing_key_pem,
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="2/minute",
        LOGIN_THROTTLE_ENABLED=False,
    )
    client = limited.test_client()
    register(client, "ada@example.com", verified=True, app=limited)
    access = login(client, "ada@example.com")["access_token"]
    statuses = [confirm_link(client, access, f"guess-{n}").status_code for n in range(3)]
    assert statuses == [400, 400, 429]
    with limited.app_context():
        db.engine.dispose()


def test_link_code_never_reaches_the_logs(google_app, attacker, ada, caplog):
    _, ada_access = ada
    url = drive_provider(start_link(attacker, ada_access), login="verified", stop_at=CALLBACK)
    with caplog.at_level(logging.DEBUG):
        callback = attacker.get(local(url))
        code = query(callback.headers["Location"])["link_code"]
        assert confirm_link(attacker, ada_access, code).status_code == 200
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert "/api/v1/oauth/link/confirm" in logged
    assert code not in logged
    assert "vera@example.com" not in logged
