"""DELETE /api/v1/auth/me: re-authentication, every row about the user gone, tokens dead at
once (also after Redis loses its data), events kept anonymised, a notice, the address free."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from auth_microservice_app.extensions import db
from auth_microservice_app.identity import accounts, revocation
from auth_microservice_app.models import EmailOutbox, SecurityEvent
from auth_microservice_app.utils.redis_client import BLOCKLIST_WARM_KEY
from tests.conftest import PASSWORD

from .helpers import ME, rows_naming

pytestmark = pytest.mark.integration


def delete_me(client, token, **body):
    return client.delete(ME, json=body, headers={"Authorization": f"Bearer {token}"})


def test_deletion_needs_the_password_and_a_fresh_token(client, auth):
    tokens = auth.signup_and_login(verified=True)
    assert delete_me(client, tokens["access_token"]).status_code == 422
    wrong = delete_me(client, tokens["access_token"], password="not the password at all")
    assert wrong.status_code == 401 and wrong.json["error"]["code"] == "invalid_credentials"
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    stale = delete_me(client, refreshed.json["access_token"], password=PASSWORD)
    assert stale.status_code == 401 and stale.json["error"]["code"] == "fresh_token_required"
    assert client.get(ME, headers=auth.bearer(refreshed.json["access_token"])).status_code == 200


def test_a_deleted_account_leaves_no_row_that_names_it(app, client, auth, mailbox):
    user = auth.register()
    auth.mark_verified()
    tokens = auth.login()
    other = auth.login()
    client.post("/api/v1/auth/password/forgot", json={"email": "alice@example.com"})
    client.post(
        "/api/v1/auth/me/email",
        json={"new_email": "alice.new@example.com", "password": PASSWORD},
        headers=auth.bearer(tokens["access_token"]),
    )
    client.post(
        "/api/v1/auth/revoke",
        json={"token": other["access_token"]},
        headers=auth.bearer(other["access_token"]),
    )
    with app.app_context():
        assert rows_naming(user["id"], "alice@example.com")  # the walk sees them before

    response = delete_me(client, tokens["access_token"], password=PASSWORD)

    assert response.status_code == 204, response.json
    [notice] = [m for m in mailbox.to("alice@example.com") if "deleted" in m["Subject"]]
    assert "was deleted" in mailbox.text(notice)
    with app.app_context():
        assert rows_naming(user["id"], "alice@example.com") == {}
        kept = db.session.execute(select(SecurityEvent)).scalars().all()
        assert any(e.event == "account_deleted" for e in kept)
        assert all(e.user_id is None and e.ip is None and e.user_agent is None for e in kept)
        assert db.session.execute(select(EmailOutbox)).scalars().all()  # the notice, scrubbed


def test_every_token_of_a_deleted_account_dies_at_once(app, client, auth, redis_client):
    auth.signup_and_login(verified=True)
    phone = auth.login()
    laptop = auth.login()
    assert delete_me(client, laptop["access_token"], password=PASSWORD).status_code == 204
    for tokens in (phone, laptop):
        answer = client.get(ME, headers=auth.bearer(tokens["access_token"]))
        assert answer.status_code == 401
        assert answer.json["error"]["code"] == "token_revoked"
        refresh = client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refresh.status_code == 401
    # Redis loses everything and is rebuilt from the database: the sessions' rows are gone,
    # and their tombstones still void the tokens.
    redis_client.flushdb()
    with app.app_context():
        revocation.rebuild_blocklist()
    assert redis_client.get(BLOCKLIST_WARM_KEY)
    answer = client.get(ME, headers=auth.bearer(phone["access_token"]))
    assert answer.status_code == 401 and answer.json["error"]["code"] == "token_revoked"


def test_the_address_is_free_for_a_new_registration(client, auth):
    tokens = auth.signup_and_login(verified=True)
    assert delete_me(client, tokens["access_token"], password=PASSWORD).status_code == 204
    again = auth.register()
    assert again["email_verified"] is False
    assert auth.login()["access_token"]


def test_the_kernel_function_deletes_for_an_operator(app, auth):
    user = auth.register()
    admin_id = uuid.uuid4()
    with app.app_context():
        accounts.delete_account(uuid.UUID(user["id"]), actor_id=admin_id)
        event = db.session.execute(
            select(SecurityEvent).where(SecurityEvent.event == "account_deleted")
        ).scalar_one()
        assert event.user_id is None
        assert event.data == {"reason": "admin", "actor_id": str(admin_id)}
        with pytest.raises(Exception, match="No such user"):
            accounts.delete_account(uuid.UUID(user["id"]))


def test_an_account_without_a_password_is_deleted_with_a_fresh_sign_in_alone(client, auth, mailbox):
    auth.register()  # unverified: the magic link's proof hands it over without the password
    client.post("/api/v1/auth/magic-link", json={"email": "alice@example.com"})
    token = mailbox.link_for("alice@example.com", "magic-link")
    tokens = client.post("/api/v1/auth/magic-link/verify", json={"token": token}).json
    wrong = delete_me(client, tokens["access_token"], password=PASSWORD)
    assert wrong.status_code == 401  # it has no password: sending one is simply wrong
    assert delete_me(client, tokens["access_token"]).status_code == 204
