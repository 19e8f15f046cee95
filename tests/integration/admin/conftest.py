"""Administration test helpers: admins made the way an operator makes the first one."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import User
from tests.conftest import PASSWORD, AuthActions

ADMIN = "/api/v1/admin"


def set_roles(client: FlaskClient, email: str, roles: list[str]) -> None:
    with client.application.app_context():
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        user.roles = roles
        db.session.commit()


def user_id(client: FlaskClient, email: str) -> str:
    with client.application.app_context():
        return str(db.session.execute(select(User.id).where(User.email == email)).scalar_one())


def enable_two_factor(client: FlaskClient, access_token: str) -> list[str]:
    headers = AuthActions.bearer(access_token)
    setup = client.post("/api/v1/2fa/setup", headers=headers)
    assert setup.status_code == 200, setup.json
    code = pyotp.TOTP(setup.json["secret"]).now()
    enabled = client.post("/api/v1/2fa/enable", json={"code": code}, headers=headers)
    assert enabled.status_code == 200, enabled.json
    return list(enabled.json["backup_codes"])


def sign_in_with_backup_code(client: FlaskClient, email: str, code: str) -> dict[str, Any]:
    login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.json["mfa_required"] is True, login.json
    verified = client.post(
        "/api/v1/2fa/verify", json={"mfa_token": login.json["mfa_token"], "code": code}
    )
    assert verified.status_code == 200, verified.json
    return dict(verified.json)


class Admin:
    """An admin signed in (with a fresh token) and the calls tests make with it."""

    def __init__(self, client: FlaskClient, auth: AuthActions, email: str) -> None:
        self.client, self.auth, self.email = client, auth, email
        auth.register(email)
        auth.mark_verified(email)
        set_roles(client, email, ["user", "admin"])
        self.id = user_id(client, email)
        self.tokens = auth.login(email)

    @property
    def headers(self) -> dict[str, str]:
        return self.auth.bearer(self.tokens["access_token"])

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(ADMIN + path, headers=self.headers, **kwargs)

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(ADMIN + path, json=body, headers=self.headers)

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(ADMIN + path, json=body, headers=self.headers)

    def delete(self, path: str) -> Any:
        return self.client.delete(ADMIN + path, headers=self.headers)


@pytest.fixture
def admin(client: FlaskClient, auth: AuthActions) -> Admin:
    return Admin(client, auth, "root@example.com")


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code, response.json
