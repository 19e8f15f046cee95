"""Registration, login and the user object, over HTTP against PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.integration
REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
USER_FIELDS = {
    "id",
    "email",
    "name",
    "email_verified",
    "two_factor_enabled",
    "roles",
    "created_at",
    "updated_at",
}


def test_register_returns_the_user_without_secrets(client):
    response = client.post(
        REGISTER, json={"email": " Ada@Example.COM ", "password": PASSWORD, "name": "Ada"}
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    user = response.json["user"]
    assert set(user) == USER_FIELDS
    assert user["email"] == "Ada@example.com"
    assert user["name"] == "Ada"
    assert user["email_verified"] is False
    assert user["roles"] == ["user"]
    assert user["created_at"].endswith("Z")
    uuid.UUID(user["id"])
    assert PASSWORD not in response.get_data(as_text=True)


def test_password_is_stored_as_argon2id(app, client):
    client.post(REGISTER, json={"email": "ada@example.com", "password": PASSWORD})
    with app.app_context():
        stored = db.session.execute(select(User.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_duplicate_email_in_another_case_is_409(client):
    client.post(REGISTER, json={"email": "ada@example.com", "password": PASSWORD})
    response = client.post(REGISTER, json={"email": "ADA@example.com", "password": PASSWORD})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "email_taken"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "too_short"),
        ("y" * 129, "too_long"),
        ("iloveyou", "common"),
        ("ada-secret-99", "contains_email"),
    ],
)
def test_weak_and_overlong_passwords_are_422_weak_password(app, client, password, reason):
    response = client.post(REGISTER, json={"email": "ada@example.com", "password": password})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "weak_password"
    assert response.json["error"]["details"]["reason"] == reason
    with app.app_context():
        assert db.session.execute(select(User)).first() is None


def test_unknown_fields_and_wrong_types_are_422(client):
    response = client.post(REGISTER, json={"email": 5, "password": PASSWORD, "is_admin": True})
    assert response.status_code == 422
    assert set(response.json["error"]["details"]) == {"email", "is_admin"}


def test_null_bytes_are_refused_before_touching_the_database(client):
    response = client.post(
        REGISTER, json={"email": "ada@example.com", "password": PASSWORD, "name": "A\x00da"}
    )
    assert response.status_code == 422
    assert "name" in response.json["error"]["details"]


def test_login_returns_a_token_pair(auth, client):
    auth.register()
    response = client.post(LOGIN, json={"email": "ALICE@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900


def test_unknown_email_wrong_password_and_passwordless_account_answer_identically(
    app, auth, client
):
    auth.register()
    with app.app_context():
        db.session.add(User(email="oauth-only@example.com", password_hash=None, roles=["user"]))
        db.session.commit()
    answers = []
    for email, password in [
        ("nobody@example.com", PASSWORD),
        ("alice@example.com", "wrong password entirely"),
        ("oauth-only@example.com", PASSWORD),
    ]:
        response = client.post(LOGIN, json={"email": email, "password": password})
        answers.append((response.status_code, response.json["error"]))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401
    assert answers[0][1]["code"] == "invalid_credentials"


def test_unknown_email_still_costs_a_hash_verification(app, client, monkeypatch):
    from auth_microservice_app.auth import flows as services

    calls = []
    original = services.burn_password_check

    def spy(password: str) -> None:
        calls.append(password)
        original(password)

    monkeypatch.setattr(services, "burn_password_check", spy)
    client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})
    assert calls == [PASSWORD]


def test_disabled_account_is_403_only_with_the_right_password(app, auth, client):
    auth.register()
    with app.app_context():
        db.session.execute(db.update(User).values(is_active=False))
        db.session.commit()
    wrong = client.post(LOGIN, json={"email": "alice@example.com", "password": "not the password"})
    assert wrong.status_code == 401
    right = client.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD})
    assert right.status_code == 403
    assert right.json["error"]["code"] == "account_disabled"


def test_require_email_verification_blocks_unverified_login(app, auth, client):
    auth.register()
    app.config["REQUIRE_EMAIL_VERIFICATION"] = True
    try:
        response = client.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD})
    finally:
        app.config["REQUIRE_EMAIL_VERIFICATION"] = False
    assert response.status_code == 403
    assert response.json["error"]["code"] == "email_not_verified"


def test_hash_with_old_parameters_is_upgraded_at_login(app, auth, client):
    auth.register()
    with app.app_context():
        app.config["ARGON2_TIME_COST"] = 3
        try:
            old_hash = db.session.execute(select(User.password_hash)).scalar_one()
            assert "t=1" in old_hash
            assert (
                client.post(
                    LOGIN, json={"email": "alice@example.com", "password": PASSWORD}
                ).status_code
                == 200
            )
            db.session.expire_all()
            new_hash = db.session.execute(select(User.password_hash)).scalar_one()
        finally:
            app.config["ARGON2_TIME_COST"] = 1
    assert "t=3" in new_hash
    assert (
        client.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD}).status_code
        == 200
    )


def test_nfkc_equivalent_password_signs_in(auth, client):
    auth.register(password="\ufb01ve little ducks went out")  # "ﬁ" ligature
    response = client.post(
        LOGIN, json={"email": "alice@example.com", "password": "five little ducks went out"}
    )
    assert response.status_code == 200


def test_me_returns_and_patch_me_updates_the_user(auth, client):
    tokens = auth.signup_and_login()
    me = client.get("/api/v1/auth/me", headers=auth.bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.headers["Cache-Control"] == "no-store"
    assert me.json["user"]["email"] == "alice@example.com"
    patched = client.patch(
        "/api/v1/auth/me", json={"name": "Alice L."}, headers=auth.bearer(tokens["access_token"])
    )
    assert patched.status_code == 200
    assert patched.json["user"]["name"] == "Alice L."
    assert (
        client.get("/api/v1/auth/me", headers=auth.bearer(tokens["access_token"])).json["user"][
            "name"
        ]
        == "Alice L."
    )


def test_patch_me_refuses_other_fields(auth, client):
    tokens = auth.signup_and_login()
    response = client.patch(
        "/api/v1/auth/me", json={"roles": ["admin"]}, headers=auth.bearer(tokens["access_token"])
    )
    assert response.status_code == 422
