"""Pooled connections: idle ones are checked before use, busy ones are trusted (database.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from auth_microservice_app.config import sqlalchemy_url
from auth_microservice_app.extensions import db
from tests.conftest import TEST_DATABASE_URL

pytestmark = pytest.mark.integration


def _terminate_pooled_backends(app) -> int:
    """Kill the server side of the connection this app's pool holds (a database restart)."""
    with app.app_context(), db.engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(sqlalchemy_url(TEST_DATABASE_URL), poolclass=NullPool)
    with admin.connect() as connection:
        killed: bool = connection.execute(
            text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
        ).scalar_one()
    admin.dispose()
    return 1 if killed else 0


def _pings(app, monkeypatch) -> list[int]:
    calls: list[int] = []
    with app.app_context():
        dialect = db.engine.dialect
        real = dialect.do_ping

        def counted(dbapi_connection):
            calls.append(1)
            return real(dbapi_connection)

        monkeypatch.setattr(dialect, "do_ping", counted)
    return calls


@pytest.mark.config(DB_POOL_PING_AFTER=0.0)  # every checkout counts as idle
def test_a_connection_that_died_while_idle_is_replaced_before_use(configured_app, auth):
    app = configured_app
    client = app.test_client()
    tokens = auth.signup_and_login()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200
    assert _terminate_pooled_backends(app) == 1
    # /me reads the database; the ping finds the dead connection and the pool reconnects
    response = client.get("/api/v1/auth/me", headers=bearer)
    assert response.status_code == 200, response.json


@pytest.mark.config(DB_POOL_PING_AFTER=3600.0)
def test_a_connection_in_use_moments_ago_is_not_pinged(configured_app, auth, monkeypatch):
    app = configured_app
    client = app.test_client()
    tokens = auth.signup_and_login()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    pings = _pings(app, monkeypatch)
    for _ in range(5):
        assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200
    assert pings == []


@pytest.mark.config(DB_POOL_PING_AFTER=0.0)
def test_an_idle_connection_is_pinged(configured_app, auth, monkeypatch):
    app = configured_app
    client = app.test_client()
    tokens = auth.signup_and_login()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    client.get("/api/v1/auth/me", headers=bearer)  # the pool now holds a used connection
    pings = _pings(app, monkeypatch)
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200
    assert pings  # checked before use


@pytest.mark.config(DB_POOL_PRE_PING=False, DB_POOL_PING_AFTER=0.0)
def test_without_pre_ping_nothing_is_pinged(configured_app, auth, monkeypatch):
    app = configured_app
    client = app.test_client()
    tokens = auth.signup_and_login()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    client.get("/api/v1/auth/me", headers=bearer)
    pings = _pings(app, monkeypatch)
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200
    assert pings == []
