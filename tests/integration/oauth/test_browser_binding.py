"""Sign-in CSRF (ASVS 7.6.2): a browser sign-in finishes only in the browser that started it.

The attack: the attacker starts a sign-in with his own provider account, stops at the callback
URL (it carries the provider's code and our state) and gets the victim's browser to open it;
without a binding she would be signed in to his account, and whatever she then saves is his.
``/authorize`` therefore sets a cookie whose SHA-256 goes with the flow, and the callback of a
sign-in flow refuses a browser without that cookie.

Werkzeug's test client, unlike a browser, sends ``Secure`` cookies over ``http://localhost``
(it ignores ``Secure`` and ``SameSite`` altogether): the flows below started and finished in
one test client do carry the cookie, and those finished in another client (another browser)
carry none or a different one, so the check itself is what each test exercises.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import OAuthAccount, SecurityEvent, User
from auth_microservice_app.oauth import flows as services
from auth_microservice_app.utils.redis_client import OAUTH_ONE_TIME_PREFIX
from tests.integration.oauth.conftest import (
    CALLBACK,
    CLIENT_REDIRECT,
    GoogleFlow,
    browser,
    drive_provider,
    local,
    login,
    query,
    register,
    start_link,
)

pytestmark = pytest.mark.integration

COOKIE = "__Secure-oauth_binding"
COOKIE_PATH = "/api/v1/oauth/"


def set_cookie(response) -> dict[str, str | None]:
    """The binding cookie of a response: its value and attributes (names in lower case)."""
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    first, *attributes = [part.strip() for part in header.split(";")]
    cookie: dict[str, str | None] = {"value": first.partition("=")[2]}
    for attribute in attributes:
        name, sep, value = attribute.partition("=")
        cookie[name.lower()] = value if sep else None
    return cookie


def authorize(client: FlaskClient, **params: str):
    response = client.get(
        "/api/v1/oauth/google/authorize", query_string={"redirect_uri": CLIENT_REDIRECT, **params}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def callback_answer(client: FlaskClient, url: str) -> dict[str, str]:
    response = client.get(local(url))
    assert response.status_code == 302, response.get_data(as_text=True)
    location = str(response.headers["Location"])
    assert location.startswith(CLIENT_REDIRECT + "?"), location
    return query(location)


def count(app: Flask, model) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


def test_authorize_sets_a_short_lived_http_only_secure_lax_cookie(google_client, redis_client):
    response = authorize(google_client)
    cookie = set_cookie(response)
    value = str(cookie["value"])
    assert len(value) >= 43 and value.replace("-", "").replace("_", "").isalnum()
    assert "httponly" in cookie and "secure" in cookie
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == "600"  # OAUTH_STATE_TTL
    assert cookie["path"] == COOKIE_PATH
    assert "domain" not in cookie
    # The flow keeps the SHA-256 of the value, never the value.
    state = query(response.headers["Location"])["state"]
    raw = redis_client.get(
        OAUTH_ONE_TIME_PREFIX + "state:" + hashlib.sha256(state.encode()).hexdigest()
    )
    assert value not in raw
    digest = base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).rstrip(b"=")
    assert services.unpack_flow(json.loads(raw))["browser_binding"] == digest.decode()


def test_callback_opened_in_another_browser_signs_nobody_in(google_app: Flask):
    attacker = browser(google_app, "attacker-browser/1.0", "203.0.113.66")
    victim = browser(google_app, "victim-browser/1.0", "198.51.100.7")
    url = drive_provider(authorize(attacker).headers["Location"], login="other", stop_at=CALLBACK)
    assert callback_answer(victim, url) == {"error": "invalid_request"}
    assert count(google_app, User) == 0
    assert count(google_app, OAuthAccount) == 0
    # The state is spent: the attacker cannot finish it either.
    assert attacker.get(local(url)).status_code == 400
    with google_app.app_context():
        [refused] = db.session.execute(
            select(SecurityEvent).where(SecurityEvent.event == "oauth_failed")
        ).scalars()
        assert (refused.user_id, refused.data["reason"]) == (None, "browser_mismatch")


def test_victims_own_binding_cookie_does_not_match_the_attackers_flow(google_app: Flask):
    attacker = google_app.test_client()
    victim = google_app.test_client()
    authorize(victim)  # the victim started a sign-in of her own: she has a cookie
    assert victim.get_cookie(COOKIE, path=COOKIE_PATH) is not None
    url = drive_provider(authorize(attacker).headers["Location"], login="other", stop_at=CALLBACK)
    assert callback_answer(victim, url) == {"error": "invalid_request"}
    assert count(google_app, User) == 0


def test_the_same_browser_finishes_its_sign_in(google_flow: GoogleFlow):
    answer = google_flow.client_redirect("verified", state="spa-state")
    assert set(answer) == {"code", "state"}
    assert google_flow.exchange(answer["code"]).status_code == 200


def test_two_tabs_share_one_cookie_and_both_finish(google_app: Flask):
    client = google_app.test_client()
    first, second = authorize(client), authorize(client)
    assert set_cookie(first)["value"] == set_cookie(second)["value"]
    first_url = drive_provider(first.headers["Location"], stop_at=CALLBACK)
    second_url = drive_provider(second.headers["Location"], stop_at=CALLBACK)
    assert "code" in callback_answer(client, second_url)
    assert "code" in callback_answer(client, first_url)


def test_a_malformed_cookie_is_replaced(google_app: Flask):
    client = google_app.test_client()
    client.set_cookie(COOKIE, "junk", path=COOKIE_PATH)
    value = set_cookie(authorize(client))["value"]
    assert value != "junk" and len(str(value)) >= 43


def test_link_flow_needs_no_cookie(google_app: Flask):
    # /link is an XHR with a token: no cookie reaches the browser. The confirm step binds it.
    client = google_app.test_client()
    register(client, "ada@example.com", verified=True, app=google_app)
    access = login(client, "ada@example.com")["access_token"]
    response = client.post(
        "/api/v1/oauth/google/link",
        json={"redirect_uri": CLIENT_REDIRECT},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert "Set-Cookie" not in response.headers
    url = drive_provider(start_link(client, access), stop_at=CALLBACK)
    assert set(callback_answer(google_app.test_client(), url)) == {"link_code"}
