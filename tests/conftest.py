"""Fixtures: one app on real PostgreSQL and Redis for the session; each test starts empty.

Isolation is by truncation, not a wrapping transaction: services commit for real, and the
concurrency tests need those commits visible across connections.

Nothing here connects to PostgreSQL or Redis until a test asks for ``app`` (or, under
tests/integration, for anything: see its conftest), so ``pytest tests/unit`` runs without either.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import flask_migrate
import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, select, text

from auth_microservice_app import create_app, wellknown
from auth_microservice_app.extensions import db
from auth_microservice_app.identity import clients, login_budget, throttle
from auth_microservice_app.identity import hashing as security
from auth_microservice_app.mail.outbox import LOCAL_DELIVERY
from auth_microservice_app.utils.keys import generate_private_key, private_key_pem
from auth_microservice_app.utils.redis_client import BLOCKLIST_WARM_KEY

# Each run gets its own database next to TEST_DATABASE_URL (default .../test), so two runs on
# one machine never drop each other's schema; subprocesses (gunicorn, celery) inherit it.
_BASE_DATABASE_URL = make_url(
    os.environ.get("TEST_DATABASE_URL_BASE")
    or os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
)
os.environ.setdefault("TEST_DATABASE_URL_BASE", _BASE_DATABASE_URL.render_as_string(False))
RUN_DATABASE = f"{_BASE_DATABASE_URL.database}_run{os.getpid()}"
TEST_DATABASE_URL = _BASE_DATABASE_URL.set(database=RUN_DATABASE).render_as_string(False)
os.environ["TEST_DATABASE_URL"] = TEST_DATABASE_URL
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def _run_database() -> Iterator[None]:
    """This run's own database, created empty and dropped at the end of the session."""
    admin = create_engine(
        _BASE_DATABASE_URL.set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{RUN_DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{RUN_DATABASE}"'))
    yield
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{RUN_DATABASE}" WITH (FORCE)'))
    admin.dispose()


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
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_DIR": os.path.join(tempfile.gettempdir(), "auth-tests-unclaimed-mail"),
        "FRONTEND_URL": "https://app.test",
        # generous: a loaded CI machine must not trip the Redis circuit breaker by accident
        "REDIS_SOCKET_TIMEOUT": 3.0,
    }
    settings.update(overrides)
    return create_app("testing", **settings)


@pytest.fixture(scope="session")
def app(_run_database: None, signing_key_pem: str) -> Iterator[Flask]:
    application = make_app(signing_key_pem)
    with application.app_context():
        flask_migrate.upgrade(
            revision="heads"
        )  # the schema comes from the migrations, so they are tested too
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def redis_client() -> redis_lib.Redis:
    return redis_lib.Redis.from_url(TEST_REDIS_URL, decode_responses=True)


def reset_state(application: Flask, redis_client: redis_lib.Redis) -> None:
    assert application.testing, "refusing to wipe a non-testing database"
    LOCAL_DELIVERY.join()  # mail of the last test is delivered before its rows go
    with application.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            tables: list[str] = list(
                connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                ).scalars()
            )
            names = [f'"{name}"' for name in tables if name != "alembic_version"]
            connection.execute(text(f"TRUNCATE {', '.join(names)} CASCADE"))
    redis_client.flushdb()
    # An empty database and an empty Redis agree: the blocklist is warm.
    redis_client.set(BLOCKLIST_WARM_KEY, "test")
    application.extensions["redis"].reset()  # breaker closed, no lost writes owed
    throttle.reset_local_state()  # the per-process fallback outlives a test
    login_budget.reset_local_state()
    security.forget_recent()  # the verification times past-budget logins replay
    clients.forget()  # service clients' records, kept a few seconds per process
    wellknown.forget_scopes()


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> Iterator[None]:
    if "app" not in request.fixturenames:
        yield
        return
    application: Flask = request.getfixturevalue("app")
    reset_state(application, request.getfixturevalue("redis_client"))
    yield
    with application.app_context():
        db.session.remove()


@pytest.fixture
def make_other_app(app: Flask, signing_key_pem: str) -> Iterator[Any]:
    """Build apps with other settings on the same database and Redis; disposed afterwards."""
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        built.append(make_app(signing_key_pem, **overrides))
        return built[-1]

    yield build
    for other in built:
        with other.app_context():
            db.engine.dispose()


@pytest.fixture
def configured_app(request: pytest.FixtureRequest, make_other_app: Any) -> Flask:
    """An app built with the test's ``@pytest.mark.config(KEY=value, ...)`` settings on the
    run's database and Redis (emptied before the test like ``app``'s), disposed afterwards.

    The closest marker is the whole configuration: a test's marker replaces its module's
    ``pytestmark`` one, it does not add to it. A test that also asks for ``mailbox`` reads
    this app's mail there. For settings known when the test is written; a test that needs
    several apps, or settings made by other fixtures (a server's port, a generated key), uses
    ``make_other_app``.
    """
    marker = request.node.get_closest_marker("config")
    if marker is None or marker.args:
        raise pytest.UsageError(
            f"{request.node.nodeid}: configured_app needs @pytest.mark.config(KEY=value, ...)"
        )
    settings = dict(marker.kwargs)
    if "mailbox" in request.fixturenames:
        settings.setdefault("EMAIL_FILE_DIR", request.getfixturevalue("mailbox").directory)
    application: Flask = make_other_app(**settings)
    return application


@pytest.fixture
def configured_client(configured_app: Flask) -> FlaskClient:
    return configured_app.test_client()


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

    def signup_and_login(
        self, email: str = "alice@example.com", *, verified: bool = False
    ) -> dict[str, Any]:
        self.register(email)
        if verified:
            self.mark_verified(email)
        return self.login(email)

    def mark_verified(self, email: str = "alice@example.com") -> None:
        """What following the verification link does (tests of that link are in email/)."""
        from auth_microservice_app.models import User
        from auth_microservice_app.models.base import utcnow

        with self.client.application.app_context():
            user = db.session.execute(select(User).where(User.email == email)).scalar_one()
            user.email_verified_at = utcnow()
            db.session.commit()

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


class Mailbox:
    """The `file` email backend's directory, read back as parsed messages."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def messages(self) -> list[Any]:
        """Every message delivered so far (after the in-process delivery thread is idle)."""
        import email
        from email import policy
        from pathlib import Path

        LOCAL_DELIVERY.join()
        files = sorted(Path(self.directory).glob("*.eml"))
        return [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]

    def to(self, address: str) -> list[Any]:
        return [m for m in self.messages() if m["To"] == address]

    @staticmethod
    def text(message: Any) -> str:
        return str(message.get_body(preferencelist=("plain",)).get_content())

    @staticmethod
    def html(message: Any) -> str:
        return str(message.get_body(preferencelist=("html",)).get_content())

    def link_for(self, address: str, action: str) -> str:
        """The token of the last message to ``address`` with an ``action`` link (file names
        sort in sending order, except under a frozen clock: the action tells them apart)."""
        import re

        pattern = re.compile(rf"https://app\.test/{action}\?token=")
        with_link = [m for m in self.to(address) if pattern.search(self.text(m))]
        assert with_link, f"no {action} link was sent to {address}"
        return self.link_token(with_link[-1], action)

    def link_token(self, message: Any, action: str) -> str:
        import re

        match = re.search(
            rf"https://app\.test/{action}\?token=([A-Za-z0-9_-]+)", self.text(message)
        )
        assert match, f"no {action} link in: {self.text(message)}"
        return match.group(1)


@pytest.fixture
def mailbox(app: Flask, tmp_path: Any) -> Iterator[Mailbox]:
    directory = str(tmp_path / "mail")
    previous = app.config["EMAIL_FILE_DIR"]
    app.config["EMAIL_FILE_DIR"] = directory
    yield Mailbox(directory)
    app.config["EMAIL_FILE_DIR"] = previous
