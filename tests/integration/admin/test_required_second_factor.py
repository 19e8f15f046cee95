"""REQUIRE_2FA_FOR_ROLES: a user whose role requires a second factor never gets a session
without one; sign-in answers only a token that can enrol one."""

from __future__ import annotations

import pyotp
import pytest

from tests.conftest import PASSWORD

from .conftest import ADMIN, set_roles

pytestmark = pytest.mark.config(REQUIRE_2FA_FOR_ROLES=["admin"])
LOGIN = "/api/v1/auth/login"


def login(client, email):
    return client.post(LOGIN, json={"email": email, "password": PASSWORD})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def ada(configured_client, auth):
    auth.client = configured_client
    auth.register("ada@example.com")
    auth.mark_verified("ada@example.com")
    set_roles(configured_client, "ada@example.com", ["user", "admin"])
    return configured_client


def test_sign_in_answers_only_an_enrollment_token(ada):
    answer = login(ada, "ada@example.com")
    assert answer.status_code == 200
    assert answer.json["mfa_enrollment_required"] is True
    assert "access_token" not in answer.json and "refresh_token" not in answer.json
    token = answer.json["enrollment_token"]
    # it is no session: not /me, not the admin API, not the other 2FA routes
    assert ada.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert ada.get(ADMIN + "/users", headers=bearer(token)).status_code == 401
    assert (
        ada.post(
            "/api/v1/2fa/backup-codes", json={"code": "123456"}, headers=bearer(token)
        ).status_code
        == 401
    )


def test_enrolling_with_it_then_signing_in_with_the_code_gives_the_session(ada):
    token = login(ada, "ada@example.com").json["enrollment_token"]
    setup = ada.post("/api/v1/2fa/setup", headers=bearer(token))
    assert setup.status_code == 200, setup.json
    totp = pyotp.TOTP(setup.json["secret"])
    enabled = ada.post("/api/v1/2fa/enable", json={"code": totp.now()}, headers=bearer(token))
    assert enabled.status_code == 200, enabled.json

    challenge = login(ada, "ada@example.com").json
    assert challenge["mfa_required"] is True
    backup_codes = enabled.json["backup_codes"]
    session = ada.post(  # the TOTP code of this step is spent: a backup code
        "/api/v1/2fa/verify", json={"mfa_token": challenge["mfa_token"], "code": backup_codes[0]}
    )
    assert session.status_code == 200, session.json
    access = bearer(session.json["access_token"])
    assert ada.get(ADMIN + "/users", headers=access).status_code == 200

    # and the second factor cannot be switched off while the role requires it
    off = ada.post(
        "/api/v1/2fa/disable",
        json={"password": PASSWORD, "code": backup_codes[1]},
        headers=access,
    )
    assert off.status_code == 409, off.json


def test_users_without_the_role_are_untouched(configured_client, auth):
    auth.client = configured_client
    auth.register("bob@example.com")
    assert "access_token" in login(configured_client, "bob@example.com").json


def test_granting_the_role_ends_the_sessions_of_a_user_without_2fa(configured_client, auth):
    auth.client = configured_client
    tokens = auth.signup_and_login("carl@example.com", verified=True)
    from auth_microservice_app.identity import accounts

    with configured_client.application.app_context():
        carl = accounts.user_id_for("carl@example.com")
        result = accounts.update_user(None, carl, {"roles": ["user", "admin"]})
    assert result.sessions_revoked == 1
    me = configured_client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401
    assert login(configured_client, "carl@example.com").json["mfa_enrollment_required"] is True
