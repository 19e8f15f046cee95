"""Email flows end to end, read back from the `.eml` files the `file` backend writes."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import EmailToken, User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.integration
API = "/api/v1/auth"
NEW_PASSWORD = "a brand new passphrase 2026"


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_registration_sends_a_verification_link_in_both_formats(auth, mailbox):
    auth.register("ada@example.com")
    (message,) = mailbox.to("ada@example.com")
    assert "Confirm your email" in message["Subject"]
    assert message["From"].addresses[0].addr_spec == "no-reply@localhost"
    token = mailbox.link_token(message, "verify-email")
    assert len(token) >= 43  # 256 random bits, URL-safe
    assert f"https://app.test/verify-email?token={token}" in mailbox.html(message)


def test_verification_link_verifies_once(auth, client, mailbox):
    auth.register("ada@example.com")
    token = mailbox.link_token(mailbox.to("ada@example.com")[0], "verify-email")
    response = client.post(f"{API}/verify-email", json={"token": token})
    assert response.status_code == 200
    assert response.json["user"]["email_verified"] is True
    again = client.post(f"{API}/verify-email", json={"token": token})
    assert again.status_code == 400
    assert again.json["error"]["code"] == "invalid_token"


def test_a_get_of_the_link_spends_nothing(auth, client, mailbox):
    # what a mail scanner does with every link: it must neither verify nor use up the token
    auth.register("ada@example.com")
    token = mailbox.link_token(mailbox.to("ada@example.com")[0], "verify-email")
    scanned = client.get(f"{API}/verify-email?token={token}")
    assert scanned.status_code == 405
    assert token not in scanned.get_data(as_text=True)
    assert auth.login("ada@example.com")  # still unverified, still the registrant's
    response = client.post(f"{API}/verify-email", json={"token": token})
    assert response.status_code == 200
    assert response.json["user"]["email_verified"] is True


def test_tokens_are_stored_only_as_hashes(app, auth, mailbox):
    auth.register("ada@example.com")
    token = mailbox.link_token(mailbox.to("ada@example.com")[0], "verify-email")
    with app.app_context():
        stored = db.session.execute(select(EmailToken.token_hash)).scalars().all()
    assert stored and token not in stored
    assert all(len(value) == 64 for value in stored)


def test_verification_link_expires_after_48_hours(auth, client, mailbox):
    auth.register("ada@example.com")
    token = mailbox.link_token(mailbox.to("ada@example.com")[0], "verify-email")
    with time_machine.travel(timedelta(hours=49)):
        response = client.post(f"{API}/verify-email", json={"token": token})
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_token"


def test_resend_voids_the_older_link(auth, client, mailbox):
    auth.register("ada@example.com")
    first = mailbox.link_token(mailbox.to("ada@example.com")[0], "verify-email")
    assert (
        client.post(f"{API}/verify-email/resend", json={"email": "ADA@example.com"}).status_code
        == 202
    )
    messages = mailbox.to("ada@example.com")
    assert len(messages) == 2
    second = mailbox.link_token(messages[1], "verify-email")
    assert client.post(f"{API}/verify-email", json={"token": first}).status_code == 400
    assert client.post(f"{API}/verify-email", json={"token": second}).status_code == 200


@pytest.mark.parametrize("path", ["/verify-email/resend", "/password/forgot", "/magic-link"])
def test_unknown_addresses_get_the_same_answer_and_no_mail(auth, client, mailbox, path):
    auth.register("ada@example.com")
    before = len(mailbox.messages())
    known = client.post(f"{API}{path}", json={"email": "ada@example.com"})
    unknown = client.post(f"{API}{path}", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json == unknown.json
    assert mailbox.to("nobody@example.com") == []
    assert len(mailbox.messages()) == before + 1  # the known address got its one message


def test_resend_to_a_verified_address_sends_nothing(auth, client, mailbox):
    auth.register("ada@example.com")
    token = mailbox.link_token(mailbox.to("ada@example.com")[0], "verify-email")
    client.post(f"{API}/verify-email", json={"token": token})
    assert (
        client.post(f"{API}/verify-email/resend", json={"email": "ada@example.com"}).status_code
        == 202
    )
    assert len(mailbox.to("ada@example.com")) == 1


def test_password_reset_end_to_end_revokes_every_session(auth, client, mailbox):
    sessions = [auth.signup_and_login("ada@example.com"), auth.login("ada@example.com")]
    assert (
        client.post(f"{API}/password/forgot", json={"email": "ada@example.com"}).status_code == 202
    )
    reset = [m for m in mailbox.to("ada@example.com") if "Reset" in m["Subject"]]
    token = mailbox.link_token(reset[0], "reset-password")

    weak = client.post(f"{API}/password/reset", json={"token": token, "password": "password1"})
    assert weak.status_code == 422  # and the link still works: the token was not spent
    done = client.post(f"{API}/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 200

    for tokens in sessions:
        assert (
            client.get(f"{API}/me", headers=auth.bearer(tokens["access_token"])).status_code == 401
        )
        assert (
            client.post(
                f"{API}/refresh", json={"refresh_token": tokens["refresh_token"]}
            ).status_code
            == 401
        )
    assert (
        client.post(
            f"{API}/login", json={"email": "ada@example.com", "password": PASSWORD}
        ).status_code
        == 401
    )
    assert (
        client.post(
            f"{API}/login", json={"email": "ada@example.com", "password": NEW_PASSWORD}
        ).status_code
        == 200
    )
    again = client.post(
        f"{API}/password/reset", json={"token": token, "password": NEW_PASSWORD + "!"}
    )
    assert again.status_code == 400 and again.json["error"]["code"] == "invalid_token"
    notice = [m for m in mailbox.to("ada@example.com") if "password was changed" in m["Subject"]]
    assert len(notice) == 1 and "reset" in mailbox.text(notice[0])


def test_reset_link_expires_after_an_hour_and_a_new_one_voids_the_old(auth, client, mailbox):
    auth.register("ada@example.com")
    client.post(f"{API}/password/forgot", json={"email": "ada@example.com"})
    client.post(f"{API}/password/forgot", json={"email": "ada@example.com"})
    first, second = [
        mailbox.link_token(m, "reset-password")
        for m in mailbox.to("ada@example.com")
        if "Reset" in m["Subject"]
    ]
    assert (
        client.post(
            f"{API}/password/reset", json={"token": first, "password": NEW_PASSWORD}
        ).status_code
        == 400
    )
    with time_machine.travel(timedelta(minutes=61)):
        late = client.post(
            f"{API}/password/reset", json={"token": second, "password": NEW_PASSWORD}
        )
    assert late.status_code == 400


def test_ten_parallel_redemptions_of_one_link_give_exactly_one_success(app, auth, mailbox):
    auth.register("ada@example.com")
    auth.client.post(f"{API}/magic-link", json={"email": "ada@example.com"})
    magic = [m for m in mailbox.to("ada@example.com") if "sign-in link" in m["Subject"]]
    token = mailbox.link_token(magic[0], "magic-link")

    def redeem(_: int) -> int:
        return app.test_client().post(f"{API}/magic-link/verify", json={"token": token}).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(redeem, range(10)))
    assert statuses.count(200) == 1
    assert statuses.count(400) == 9


def test_magic_link_signs_in_verifies_the_email_and_works_once(app, auth, client, mailbox):
    auth.register("ada@example.com")
    client.post(f"{API}/magic-link", json={"email": "ada@example.com"})
    message = [m for m in mailbox.to("ada@example.com") if "sign-in link" in m["Subject"]][0]
    token = mailbox.link_token(message, "magic-link")
    response = client.post(f"{API}/magic-link/verify", json={"token": token})
    assert response.status_code == 200
    assert claims(response.json["access_token"])["amr"] == ["email"]
    assert claims(response.json["access_token"])["email_verified"] is True
    assert client.post(f"{API}/magic-link/verify", json={"token": token}).status_code == 400


def test_magic_link_expires_after_15_minutes(auth, client, mailbox):
    auth.register("ada@example.com")
    client.post(f"{API}/magic-link", json={"email": "ada@example.com"})
    message = [m for m in mailbox.to("ada@example.com") if "sign-in link" in m["Subject"]][0]
    with time_machine.travel(timedelta(minutes=16)):
        response = client.post(
            f"{API}/magic-link/verify", json={"token": mailbox.link_token(message, "magic-link")}
        )
    assert response.status_code == 400


def test_a_token_for_one_purpose_is_refused_for_another(auth, client, mailbox):
    auth.register("ada@example.com")
    token = mailbox.link_token(mailbox.to("ada@example.com")[0], "verify-email")
    assert client.post(f"{API}/magic-link/verify", json={"token": token}).status_code == 400
    assert (
        client.post(
            f"{API}/password/reset", json={"token": token, "password": NEW_PASSWORD}
        ).status_code
        == 400
    )


def test_password_change_needs_the_current_password(auth, client, mailbox):
    tokens = auth.signup_and_login("ada@example.com")
    body = {"current_password": "not it at all", "new_password": NEW_PASSWORD}
    response = client.post(
        f"{API}/password/change", json=body, headers=auth.bearer(tokens["access_token"])
    )
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_credentials"
    assert client.get(f"{API}/me", headers=auth.bearer(tokens["access_token"])).status_code == 200


def test_password_change_returns_a_new_pair_and_revokes_the_other_sessions(auth, client, mailbox):
    current = auth.signup_and_login("ada@example.com")
    other = auth.login("ada@example.com")
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    response = client.post(
        f"{API}/password/change", json=body, headers=auth.bearer(current["access_token"])
    )
    assert response.status_code == 200
    fresh = response.json
    assert client.get(f"{API}/me", headers=auth.bearer(fresh["access_token"])).status_code == 200
    for tokens in (current, other):
        assert (
            client.get(f"{API}/me", headers=auth.bearer(tokens["access_token"])).status_code == 401
        )
    assert (
        client.post(
            f"{API}/login", json={"email": "ada@example.com", "password": NEW_PASSWORD}
        ).status_code
        == 200
    )
    notice = [m for m in mailbox.to("ada@example.com") if "password was changed" in m["Subject"]]
    assert len(notice) == 1


def test_weak_new_password_is_refused_on_change(auth, client):
    tokens = auth.signup_and_login("ada@example.com")
    body = {"current_password": PASSWORD, "new_password": "qwerty123"}
    response = client.post(
        f"{API}/password/change", json=body, headers=auth.bearer(tokens["access_token"])
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "weak_password"


def test_sign_in_from_an_unseen_device_sends_a_notice(auth, client, mailbox):
    auth.signup_and_login("ada@example.com")  # pytest-browser
    auth.login("ada@example.com")  # the same device: nothing
    assert not [m for m in mailbox.to("ada@example.com") if "New sign-in" in m["Subject"]]
    client.post(
        f"{API}/login",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"User-Agent": "SomePhone/1.0"},
    )
    (notice,) = [m for m in mailbox.to("ada@example.com") if "New sign-in" in m["Subject"]]
    assert "SomePhone/1.0" in mailbox.text(notice)


def test_disabled_account_gets_no_reset_mail(app, auth, client, mailbox):
    auth.register("ada@example.com")
    with app.app_context():
        db.session.execute(db.update(User).values(is_active=False))
        db.session.commit()
    client.post(f"{API}/password/forgot", json={"email": "ada@example.com"})
    assert not [m for m in mailbox.to("ada@example.com") if "Reset" in m["Subject"]]
