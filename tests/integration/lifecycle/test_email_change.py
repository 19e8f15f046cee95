"""POST /me/email and /me/email/confirm: a link bound to the account and the new address, the
old address told, other sessions revoked, and no way to give two accounts one address."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import User
from tests.concurrency import race
from tests.conftest import PASSWORD

from .helpers import ME

pytestmark = pytest.mark.integration
CHANGE = "/api/v1/auth/me/email"
CONFIRM = "/api/v1/auth/me/email/confirm"
NEW = "alice.new@example.com"
ACTION = "confirm-email-change"


def ask(client, auth, token, new_email=NEW, password=PASSWORD):
    body = {"new_email": new_email}
    if password is not None:
        body["password"] = password
    return client.post(CHANGE, json=body, headers=auth.bearer(token))


def test_the_new_address_gets_a_link_the_old_one_a_notice_and_confirming_switches(
    client, auth, mailbox
):
    tokens = auth.signup_and_login(verified=True)
    other_device = auth.login()
    assert ask(client, auth, tokens["access_token"]).status_code == 202
    [notice] = mailbox.to("alice@example.com")[-1:]
    assert "a***@example.com" in mailbox.text(notice)
    token = mailbox.link_for(NEW, ACTION)

    response = client.post(
        CONFIRM, json={"token": token}, headers=auth.bearer(tokens["access_token"])
    )

    assert response.status_code == 200, response.json
    assert response.json["user"]["email"] == NEW
    assert response.json["user"]["email_verified"] is True
    assert client.get(ME, headers=auth.bearer(tokens["access_token"])).status_code == 200
    revoked = client.get(ME, headers=auth.bearer(other_device["access_token"]))
    assert revoked.json["error"]["code"] == "token_revoked"
    assert "changed to" in mailbox.text(mailbox.to("alice@example.com")[-1])
    assert auth.login(NEW)["access_token"]
    old = client.post(
        "/api/v1/auth/login", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401
    again = client.post(CONFIRM, json={"token": token})
    assert again.status_code == 400 and again.json["error"]["code"] == "invalid_token"


def test_the_request_needs_the_password_and_a_fresh_token(client, auth):
    tokens = auth.signup_and_login(verified=True)
    assert ask(client, auth, tokens["access_token"], password=None).status_code == 422
    assert (
        ask(client, auth, tokens["access_token"], password="wrong password here").status_code == 401
    )
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    stale = ask(client, auth, refreshed.json["access_token"])
    assert stale.json["error"]["code"] == "fresh_token_required"


def test_an_address_another_account_holds_is_refused_as_registration_refuses_it(
    app, client, auth, mailbox
):
    auth.register("bob@example.com")  # unverified, not expired: registration says 409 too
    tokens = auth.signup_and_login(verified=True)
    response = ask(client, auth, tokens["access_token"], new_email="BOB@example.com")
    assert response.status_code == 409 and response.json["error"]["code"] == "email_taken"
    register = client.post(
        "/api/v1/auth/register", json={"email": "bob@example.com", "password": PASSWORD}
    )
    assert register.json["error"]["code"] == "email_taken"
    own = ask(client, auth, tokens["access_token"], new_email="Alice@Example.com")
    assert own.status_code == 422
    assert not [
        m
        for m in mailbox.messages()
        if m["To"].lower() == "bob@example.com" and "Confirm your new" in m["Subject"]
    ]


def test_an_expired_unverified_holder_gives_the_address_up(app, client, auth, mailbox):
    auth.register("bob@example.com")
    with app.app_context():
        bob = db.session.execute(select(User).where(User.email == "bob@example.com")).scalar_one()
        bob.created_at -= timedelta(seconds=app.config["UNVERIFIED_ACCOUNT_TTL"] + 1)
        db.session.commit()
    tokens = auth.signup_and_login(verified=True)
    assert ask(client, auth, tokens["access_token"], new_email="bob@example.com").status_code == 202
    token = mailbox.link_for("bob@example.com", ACTION)
    assert client.post(CONFIRM, json={"token": token}).status_code == 200
    with app.app_context():
        assert db.session.execute(select(User.email)).scalars().all() == ["bob@example.com"]


def test_a_second_request_voids_the_first_link(client, auth, mailbox):
    tokens = auth.signup_and_login(verified=True)
    ask(client, auth, tokens["access_token"])
    first = mailbox.link_for(NEW, ACTION)
    ask(client, auth, tokens["access_token"], new_email="alice.other@example.com")
    second = mailbox.link_for("alice.other@example.com", ACTION)
    assert client.post(CONFIRM, json={"token": first}).json["error"]["code"] == "invalid_token"
    assert (
        client.post(CONFIRM, json={"token": second}).json["user"]["email"]
        == "alice.other@example.com"
    )


def test_an_address_taken_meanwhile_fails_the_confirmation_cleanly(app, client, auth, mailbox):
    tokens = auth.signup_and_login(verified=True)
    ask(client, auth, tokens["access_token"])
    token = mailbox.link_for(NEW, ACTION)
    auth.register(NEW)  # someone registers the address before the link is followed
    response = client.post(CONFIRM, json={"token": token})
    assert response.status_code == 409 and response.json["error"]["code"] == "email_taken"
    assert client.post(CONFIRM, json={"token": token}).json["error"]["code"] == "invalid_token"
    with app.app_context():
        emails = sorted(db.session.execute(select(User.email)).scalars())
    assert emails == ["alice.new@example.com", "alice@example.com"]


def test_two_confirmations_at_once_never_give_two_accounts_one_address(app, client, auth, mailbox):
    links = []
    for owner in ("alice@example.com", "carol@example.com"):
        tokens = auth.signup_and_login(owner, verified=True)
        ask(client, auth, tokens["access_token"])
        links.append(mailbox.link_for(NEW, ACTION))

    def confirm(token: str) -> Any:
        return lambda c: c.post(CONFIRM, json={"token": token})

    responses = race(app, [confirm(t) for t in links])
    assert sorted(r.status_code for r in responses) == [200, 409]
    with app.app_context():
        holders = db.session.execute(select(User).where(User.email == NEW)).scalars().all()
    assert len(holders) == 1


def test_a_reset_link_mailed_to_the_old_address_dies_with_the_change(client, auth, mailbox):
    tokens = auth.signup_and_login(verified=True)
    client.post("/api/v1/auth/password/forgot", json={"email": "alice@example.com"})
    reset = mailbox.link_for("alice@example.com", "reset-password")
    ask(client, auth, tokens["access_token"])
    assert client.post(CONFIRM, json={"token": mailbox.link_for(NEW, ACTION)}).status_code == 200
    response = client.post(
        "/api/v1/auth/password/reset",
        json={"token": reset, "password": "another long passphrase 42"},
    )
    assert response.status_code == 400


def test_the_link_is_no_other_kind_of_link(client, auth, mailbox):
    tokens = auth.signup_and_login(verified=True)
    ask(client, auth, tokens["access_token"])
    token = mailbox.link_for(NEW, ACTION)
    assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 400
    assert client.post("/api/v1/auth/magic-link/verify", json={"token": token}).status_code == 400
    assert client.post(CONFIRM, json={"token": token}).status_code == 200
