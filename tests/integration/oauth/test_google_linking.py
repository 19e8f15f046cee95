"""Linking rules: automatic only with two verified emails, /link for signed-in users, unlinking."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from sqlalchemy import func, select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import OAuthAccount, User
from tests.integration.oauth.conftest import (
    CALLBACK,
    CLIENT_REDIRECT,
    GoogleFlow,
    access_claims,
    bearer,
    confirm_link,
    drive_provider,
    linked_accounts,
    login,
    query,
    register,
)

pytestmark = pytest.mark.integration


def users(app: Flask) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(User)).scalar_one())


def test_both_emails_verified_links_automatically(google_flow: GoogleFlow, google_app):
    user_id = register(google_flow.client, "vera@example.com", verified=True, app=google_app)
    pair = google_flow.sign_in("verified")
    assert access_claims(pair)["sub"] == user_id
    assert linked_accounts(google_app) == [("google", user_id)]
    assert users(google_app) == 1


def test_local_email_in_another_letter_case_still_matches(google_flow: GoogleFlow, google_app):
    user_id = register(google_flow.client, "Vera@example.com", verified=True, app=google_app)
    assert access_claims(google_flow.sign_in("verified"))["sub"] == user_id


def test_unverified_local_account_is_claimed_not_merged(google_flow: GoogleFlow, google_app):
    # The provider's vouching is the first proof of the mailbox: the account is handed over
    # clean (its registrant's password goes; tests/integration/oauth/test_account_claim.py).
    user_id = register(google_flow.client, "vera@example.com", verified=False, app=google_app)
    pair = google_flow.sign_in("verified")
    assert access_claims(pair)["sub"] == user_id
    assert linked_accounts(google_app) == [("google", user_id)]
    with google_app.app_context():
        user = db.session.get(User, uuid.UUID(user_id))
        assert user is not None and user.password_hash is None and user.email_verified
    assert users(google_app) == 1


def test_unverified_provider_email_is_not_merged(google_flow: GoogleFlow, google_app):
    register(google_flow.client, "una@example.com", verified=True, app=google_app)
    assert google_flow.client_redirect("unverified") == {"error": "account_exists_unverified"}
    assert linked_accounts(google_app) == []


def test_refused_link_over_the_native_endpoint_is_409(google_flow, google_app, oidc_provider):
    register(google_flow.client, "una@example.com", verified=True, app=google_app)
    token = oidc_provider.sign(
        oidc_provider.claims(sub="unverified", email="una@example.com", email_verified=False)
    )
    response = google_flow.client.post("/api/v1/oauth/google/token", json={"id_token": token})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "account_exists_unverified"


def test_link_endpoint_links_the_provider_to_the_signed_in_user(
    google_flow: GoogleFlow, google_app
):
    user_id = register(google_flow.client, "ada@example.com", verified=True, app=google_app)
    access = login(google_flow.client, "ada@example.com")["access_token"]
    response = google_flow.client.post(
        "/api/v1/oauth/google/link",
        json={"redirect_uri": CLIENT_REDIRECT, "state": "link-1"},
        headers=bearer(access),
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    url = response.json["authorization_url"]
    assert query(url)["code_challenge_method"] == "S256"
    callback = google_flow.callback(drive_provider(url, login="verified", stop_at=CALLBACK))
    assert callback.status_code == 302
    answer = query(callback.headers["Location"])
    assert set(answer) == {"link_code", "state"} and answer["state"] == "link-1"
    assert linked_accounts(google_app) == []  # the callback links nothing
    confirmed = confirm_link(google_flow.client, access, answer["link_code"])
    assert confirmed.status_code == 200, confirmed.json
    assert linked_accounts(google_app) == [("google", user_id)]
    # the Google identity now signs in to that account, whatever its email
    assert access_claims(google_flow.sign_in("verified"))["sub"] == user_id
    accounts = google_flow.client.get("/api/v1/oauth/accounts", headers=bearer(access))
    assert [a["provider"] for a in accounts.json["accounts"]] == ["google"]


def test_link_requires_an_access_token(google_client):
    response = google_client.post(
        "/api/v1/oauth/google/link", json={"redirect_uri": CLIENT_REDIRECT}
    )
    assert response.status_code == 401
    assert response.json["error"]["code"] == "authorization_required"


def test_link_checks_the_redirect_uri(google_flow: GoogleFlow, google_app):
    register(google_flow.client, "ada@example.com", verified=True, app=google_app)
    access = login(google_flow.client, "ada@example.com")["access_token"]
    response = google_flow.client.post(
        "/api/v1/oauth/google/link",
        json={"redirect_uri": "https://evil.example.com/"},
        headers=bearer(access),
    )
    assert response.status_code == 400


def test_identity_of_another_user_cannot_be_linked(google_flow: GoogleFlow, google_app):
    google_flow.sign_in("verified")  # vera's Google identity belongs to the new user "vera"
    register(google_flow.client, "ada@example.com", verified=True, app=google_app)
    access = login(google_flow.client, "ada@example.com")["access_token"]
    url = google_flow.client.post(
        "/api/v1/oauth/google/link",
        json={"redirect_uri": CLIENT_REDIRECT},
        headers=bearer(access),
    ).json["authorization_url"]
    callback = google_flow.callback(drive_provider(url, login="verified", stop_at=CALLBACK))
    code = query(callback.headers["Location"])["link_code"]
    response = confirm_link(google_flow.client, access, code)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "oauth_already_linked"
    assert [provider for provider, _ in linked_accounts(google_app)] == ["google"]


def test_unlink_with_a_password_left(google_flow: GoogleFlow, google_app):
    register(google_flow.client, "vera@example.com", verified=True, app=google_app)
    google_flow.sign_in("verified")  # linked automatically
    access = login(google_flow.client, "vera@example.com")["access_token"]
    response = google_flow.client.delete("/api/v1/oauth/google", headers=bearer(access))
    assert response.status_code == 204
    assert linked_accounts(google_app) == []
    again = google_flow.client.delete("/api/v1/oauth/google", headers=bearer(access))
    assert again.status_code == 404
    assert again.json["error"]["code"] == "not_found"


def test_unlinking_the_only_sign_in_method_is_409(google_flow: GoogleFlow, google_app):
    access = google_flow.sign_in("verified")["access_token"]  # OAuth-only user, no password
    response = google_flow.client.delete("/api/v1/oauth/google", headers=bearer(access))
    assert response.status_code == 409
    assert response.json["error"]["code"] == "last_sign_in_method"
    assert len(linked_accounts(google_app)) == 1


def test_unlink_is_allowed_when_another_provider_remains(google_flow: GoogleFlow, google_app):
    access = google_flow.sign_in("verified")["access_token"]
    user_id = access_claims({"access_token": access})["sub"]
    with google_app.app_context():
        db.session.add(
            OAuthAccount(
                user_id=uuid.UUID(user_id),
                provider="github",
                subject="12345",
                email=None,
                email_verified=False,
            )
        )
        db.session.commit()
    response = google_flow.client.delete("/api/v1/oauth/google", headers=bearer(access))
    assert response.status_code == 204
    assert linked_accounts(google_app) == [("github", user_id)]


def test_unconfigured_or_unknown_provider_is_404(google_flow: GoogleFlow, google_client):
    access = google_flow.sign_in("verified")["access_token"]
    for method, path in [
        ("get", "/api/v1/oauth/github/authorize?redirect_uri=" + CLIENT_REDIRECT),
        ("get", "/api/v1/oauth/github/callback?state=x"),
        ("post", "/api/v1/oauth/apple/callback"),
        ("post", "/api/v1/oauth/twitter/token"),
        ("post", "/api/v1/oauth/github/link"),
        ("delete", "/api/v1/oauth/github"),
        ("delete", "/api/v1/oauth/twitter"),
    ]:
        response = getattr(google_client, method)(path, headers=bearer(access))
        assert response.status_code == 404, path
        assert response.json["error"]["code"] == "not_found"


def test_providers_lists_only_configured_ones(google_client):
    response = google_client.get("/api/v1/oauth/providers")
    assert response.status_code == 200
    assert response.json == {"providers": [{"name": "google", "display_name": "Google"}]}


def test_providers_is_empty_without_configuration(client):
    assert client.get("/api/v1/oauth/providers").json == {"providers": []}
    response = client.get("/api/v1/oauth/google/authorize?redirect_uri=x")
    assert response.status_code == 404
