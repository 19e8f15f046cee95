"""Finding 1: what a squatter attaches before the owner proves the mailbox must not survive it.

The attack: the squatter registers ``victim@example.com`` first, signs in (allowed while
``REQUIRE_EMAIL_VERIFICATION`` is off), and attaches what he can: sessions, a provider link,
an authenticator. The owner arrives, cannot register (409), and proves her mailbox another way:
a magic link or a password reset. Nothing of his may work afterwards.

Credentials attached through the API are refused now (first tests); the hand-over tests put
them in the database directly, as an account made before this fix would hold them.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import func, select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import (
    EmailToken,
    User,
)
from auth_microservice_app.tasks.maintenance import purge_expired
from tests.concurrency import race
from tests.conftest import PASSWORD, AuthActions
from tests.squatter import SQUATTER_PASSWORD, Squatter, bearer

pytestmark = pytest.mark.integration
API = "/api/v1/auth"
VICTIM = "victim@example.com"
OWNER_PASSWORD = "the owner's new passphrase"


def error_code(response) -> str:
    return str(response.json["error"]["code"])


@pytest.fixture
def squatter(client, app) -> Squatter:
    return Squatter(client, app, VICTIM)


# --- an unproven address acquires no credential ------------------------------------------------


def test_an_unverified_account_cannot_enrol_an_authenticator(squatter, client):
    setup = client.post("/api/v1/2fa/setup", headers=bearer(squatter.tokens["access_token"]))
    assert setup.status_code == 403
    assert error_code(setup) == "email_not_verified"
    enable = client.post(
        "/api/v1/2fa/enable",
        json={"code": "123456"},
        headers=bearer(squatter.tokens["access_token"]),
    )
    assert enable.status_code == 403
    assert error_code(enable) == "email_not_verified"
    assert squatter.what_is_left()["two_factor"] == 0


# --- the owner's first proof of the mailbox hands the account over clean -----------------------


def test_the_owners_magic_link_hands_the_account_over_clean(squatter, client, mailbox):
    squatter.attach_everything()
    assert (
        client.post(f"{API}/register", json={"email": VICTIM, "password": PASSWORD}).json["error"][
            "code"
        ]
        == "email_taken"
    )

    assert client.post(f"{API}/magic-link", json={"email": VICTIM}).status_code == 202
    token = mailbox.link_for(VICTIM, "magic-link")
    signed_in = client.post(f"{API}/magic-link/verify", json={"token": token})

    assert signed_in.status_code == 200
    assert "access_token" in signed_in.json  # no second factor of his stands in her way
    me = client.get(f"{API}/me", headers=bearer(signed_in.json["access_token"])).json["user"]
    assert me["email_verified"] is True and me["two_factor_enabled"] is False
    assert squatter.what_is_left() == {
        "provider_links": 0,
        "two_factor": 0,
        "backup_codes": 0,
        "challenges": 0,
        "has_password": 0,
    }
    squatter.assert_locked_out()


def test_the_owners_password_reset_hands_the_account_over_clean(squatter, client, mailbox):
    squatter.attach_everything()
    assert client.post(f"{API}/password/forgot", json={"email": VICTIM}).status_code == 202
    token = mailbox.link_for(VICTIM, "reset-password")
    reset = client.post(f"{API}/password/reset", json={"token": token, "password": OWNER_PASSWORD})
    assert reset.status_code == 200

    assert squatter.what_is_left() == {
        "provider_links": 0,
        "two_factor": 0,
        "backup_codes": 0,
        "challenges": 0,
        "has_password": 1,  # hers
    }
    squatter.assert_locked_out()
    login = client.post(f"{API}/login", json={"email": VICTIM, "password": OWNER_PASSWORD})
    assert login.status_code == 200
    assert "access_token" in login.json  # no challenge from his authenticator


@pytest.mark.config(REQUIRE_EMAIL_VERIFICATION=True)
def test_with_verification_required_his_password_does_not_start_working_for_him(
    configured_app, mailbox
):
    app = configured_app
    client = app.test_client()
    AuthActions(client).register(VICTIM, SQUATTER_PASSWORD)
    his_try = client.post(f"{API}/login", json={"email": VICTIM, "password": SQUATTER_PASSWORD})
    assert error_code(his_try) == "email_not_verified"

    client.post(f"{API}/magic-link", json={"email": VICTIM})
    token = mailbox.link_for(VICTIM, "magic-link")
    assert client.post(f"{API}/magic-link/verify", json={"token": token}).status_code == 200

    after = client.post(f"{API}/login", json={"email": VICTIM, "password": SQUATTER_PASSWORD})
    assert after.status_code == 401
    assert error_code(after) == "invalid_credentials"


def test_the_registrants_own_verification_link_keeps_what_is_theirs(client, mailbox):
    owner = AuthActions(client)
    owner.register(VICTIM, PASSWORD)
    tokens = owner.login(VICTIM, PASSWORD)
    token = mailbox.link_token(mailbox.to(VICTIM)[0], "verify-email")
    assert client.post(f"{API}/verify-email", json={"token": token}).status_code == 200
    assert owner.login(VICTIM, PASSWORD)["access_token"]
    refresh = client.post(f"{API}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 200


def test_a_second_proof_of_a_verified_address_changes_nothing(client, mailbox, auth):
    tokens = auth.signup_and_login(VICTIM, verified=True)
    client.post(f"{API}/magic-link", json={"email": VICTIM})
    token = mailbox.link_for(VICTIM, "magic-link")
    assert client.post(f"{API}/magic-link/verify", json={"token": token}).status_code == 200
    refresh = client.post(f"{API}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 200  # a verified owner's other sessions are hers to keep
    assert auth.login(VICTIM)["access_token"]


# --- unverified accounts expire ------------------------------------------------------------------


def created_long_ago(app, email: str, *, hours: int = 49) -> None:
    with app.app_context():
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        user.created_at = datetime.now(UTC) - timedelta(hours=hours)
        db.session.commit()


def test_a_registration_takes_over_an_expired_unverified_account(squatter, client, app):
    created_long_ago(app, VICTIM)
    owner = client.post(f"{API}/register", json={"email": VICTIM, "password": OWNER_PASSWORD})
    assert owner.status_code == 201
    squatter.assert_locked_out()
    assert AuthActions(client).login(VICTIM, OWNER_PASSWORD)["access_token"]
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(User)).scalar_one() == 1


def test_an_unexpired_unverified_account_still_holds_its_address(squatter, client, app):
    created_long_ago(app, VICTIM, hours=47)
    again = client.post(f"{API}/register", json={"email": VICTIM, "password": OWNER_PASSWORD})
    assert again.status_code == 409


def test_an_expired_unverified_account_cannot_sign_in(squatter, client, app):
    created_long_ago(app, VICTIM)
    login = client.post(f"{API}/login", json={"email": VICTIM, "password": SQUATTER_PASSWORD})
    assert login.status_code == 401
    assert error_code(login) == "invalid_credentials"


def register(client, body):
    return client.post(f"{API}/register", json=body)


def test_ten_parallel_registrations_of_an_expired_address_make_one_account(squatter, app):
    created_long_ago(app, VICTIM)
    bodies = [{"email": VICTIM, "password": f"{OWNER_PASSWORD} {n}"} for n in range(10)]
    results = race(app, [partial(register, body=body) for body in bodies])
    assert Counter(r.status_code for r in results) == Counter({201: 1, 409: 9})
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(User)).scalar_one() == 1


def test_the_purge_deletes_expired_unverified_accounts_and_their_sessions(squatter, client, app):
    verified = AuthActions(client)
    verified.signup_and_login("kept@example.com", verified=True)
    created_long_ago(app, VICTIM)
    created_long_ago(app, "kept@example.com")
    with app.app_context():
        removed = purge_expired()
        emails = set(db.session.execute(select(User.email)).scalars())
    assert removed["unverified_accounts"] == 1
    assert emails == {"kept@example.com"}
    squatter.assert_locked_out()


@pytest.mark.config(UNVERIFIED_ACCOUNT_TTL=0)
def test_expiry_can_be_switched_off(configured_app):
    app = configured_app
    client = app.test_client()
    AuthActions(client).register(VICTIM, SQUATTER_PASSWORD)
    created_long_ago(app, VICTIM, hours=24 * 365)
    again = client.post(f"{API}/register", json={"email": VICTIM, "password": PASSWORD})
    assert again.status_code == 409


# --- links outstanding at a reset or change ----------------------------------------------------


def test_a_magic_link_sent_before_a_password_reset_no_longer_signs_in(auth, client, mailbox):
    auth.signup_and_login(VICTIM, verified=True)
    client.post(f"{API}/magic-link", json={"email": VICTIM})
    early = mailbox.link_for(VICTIM, "magic-link")
    client.post(f"{API}/password/forgot", json={"email": VICTIM})
    reset = mailbox.link_for(VICTIM, "reset-password")
    assert (
        client.post(
            f"{API}/password/reset", json={"token": reset, "password": OWNER_PASSWORD}
        ).status_code
        == 200
    )
    late = client.post(f"{API}/magic-link/verify", json={"token": early})
    assert late.status_code == 400
    assert error_code(late) == "invalid_token"


def test_a_password_change_voids_every_outstanding_link(auth, client, mailbox, app):
    tokens = auth.signup_and_login(VICTIM, verified=True)
    client.post(f"{API}/magic-link", json={"email": VICTIM})
    client.post(f"{API}/password/forgot", json={"email": VICTIM})
    magic = mailbox.link_for(VICTIM, "magic-link")
    change = client.post(
        f"{API}/password/change",
        json={"current_password": PASSWORD, "new_password": OWNER_PASSWORD},
        headers=bearer(tokens["access_token"]),
    )
    assert change.status_code == 200
    assert client.post(f"{API}/magic-link/verify", json={"token": magic}).status_code == 400
    with app.app_context():
        unused = db.session.execute(
            select(func.count()).select_from(EmailToken).where(EmailToken.used_at.is_(None))
        ).scalar_one()
    assert unused == 0


def test_mail_to_an_unproven_address_carries_no_registrant_chosen_name(client, mailbox, auth):
    # the name is the registrant's text; mailed to any address, it is spam or phishing from us
    body = {"email": VICTIM, "password": PASSWORD, "name": "Visit evil.example to win"}
    assert client.post(f"{API}/register", json=body).status_code == 201
    verification = mailbox.to(VICTIM)[0]
    assert "evil.example" not in mailbox.text(verification)
    assert "evil.example" not in mailbox.html(verification)
    auth.mark_verified(VICTIM)
    client.post(f"{API}/magic-link", json={"email": VICTIM})
    magic = [m for m in mailbox.to(VICTIM) if "magic-link" in mailbox.text(m)][-1]
    assert "evil.example" in mailbox.text(magic)  # once the address is proven, it is theirs
