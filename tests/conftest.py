"""Fixtures: one app on real PostgreSQL and Redis for the session; each test starts empty.

Isolation is by truncation, not a wrapping transaction: services commit for real, and the
concurrency tests need those commits visible across connections.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import flask_migrate
import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from auth_microservice_app import create_app
from auth_microservice_app.extensions import db
from auth_microservice_app.utils.keys import generate_private_key, private_key_pem
from auth_microservice_app.utils.redis_client import BLOCKLIST_WARM_KEY

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TABLES = ("revoked_tokens", "user_sessions", "users")
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def signing_key_pem() -> str:
    return private_key_pem(generate_private_key("RS256")).decode()


def make_app(signing_key_pem: str, **overrides: Any) -> Flask:
    settings: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL,
        "JWT_PRIVATE_KEY": signing_key_pem,
        "JWT_ISSUER": "https://auth.test",
        "LOG_LEVEL": "INFO",
    }
    settings.update(overrides)
    return create_app("testing", **settings)


@pytest.fixture(scope="session")
def app(signing_key_pem: str) -> Iterator[Flask]:
    application = make_app(signing_key_pem)
    with application.app_context():
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        flask_migrate.upgrade(revision="heads")  # the schema comes from the migrations, so they are tested too
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def redis_client() -> redis_lib.Redis:
    return redis_lib.Redis.from_url(TEST_REDIS_URL, decode_responses=True)


def reset_state(application: Flask, redis_client: redis_lib.Redis) -> None:
    assert application.testing, "refusing to wipe a non-testing database"
    with application.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    redis_client.flushdb()
    # An empty database and an empty Redis agree: the blocklist is warm.
    redis_client.set(BLOCKLIST_WARM_KEY, "test")
    application.extensions["redis"]._open_until = 0.0
    application.extensions["redis"].lost_writes = False


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest, redis_client: redis_lib.Redis) -> Iterator[None]:
    if "app" not in request.fixturenames:
        yield
        return
    application: Flask = request.getfixturevalue("app")
    reset_state(application, redis_client)
    yield
    with application.app_context():
        db.session.remove()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class AuthActions:
    """Helpers for the HTTP steps most tests need."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def register(self, email: str = "alice@example.com", password: str = PASSWORD) -> Any:
        response = self.client.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.json
        return response.json["user"]

    def login(self, email: str = "alice@example.com", password: str = PASSWORD) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/auth/login",
            json={"email": email, "password": password},
            headers={"User-Agent": "pytest-browser"},
        )
        assert response.status_code == 200, response.json
        return dict(response.json)

    def signup_and_login(self, email: str = "alice@example.com") -> dict[str, Any]:
        self.register(email)
        return self.login(email)

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)
