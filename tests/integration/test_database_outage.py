"""PostgreSQL going away under a running server: 503 with the envelope, never 500 (issue 16).

The server is real gunicorn with gunicorn.conf.py, pointed at the test database through a TCP
proxy on loopback (tests/tcp_proxy.py) that the test cuts and restores: the shared PostgreSQL
server itself is never stopped. The in-process twin of the pool test is
tests/integration/security/test_throttle_races.py
(test_a_request_that_gets_no_database_connection_in_time_answers_503).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import make_url

from tests.conftest import PASSWORD, TEST_DATABASE_URL
from tests.running_server import Answer, Server, start_service
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: What a client may wait for an answer while the database is gone.
ANSWER_WITHIN_S = 5.0
RECOVERY_DEADLINE_S = 20.0


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    database = make_url(TEST_DATABASE_URL)
    with TcpProxy(database.host or "127.0.0.1", database.port or 5432) as running:
        yield running


@pytest.fixture
def start_server(
    app: Flask, proxy: TcpProxy, tmp_path: Path, signing_key_pem: str
) -> Iterator[Any]:
    """gunicorn on the test database (migrated by ``app``), reached only through ``proxy``."""
    through_proxy = make_url(TEST_DATABASE_URL).set(host="127.0.0.1", port=proxy.port)
    servers: list[Server] = []

    def run(**settings: str) -> Server:
        server = start_service(
            tmp_path,
            signing_key_pem,
            DATABASE_URL=through_proxy.render_as_string(hide_password=False),
            **settings,
        )
        servers.append(server)
        return server

    yield run
    for server in servers:
        server.stop()


def sign_up(server: Server, email: str) -> dict[str, str]:
    registered = server.call("POST", "/api/v1/auth/register", body=credentials(email))
    assert registered.status == 201, f"{registered}\n{server.logs()}"
    return log_in(server, email)


def log_in(server: Server, email: str) -> dict[str, str]:
    """The token pair of a fresh sign-in."""
    signed_in = server.call("POST", "/api/v1/auth/login", body=credentials(email))
    assert signed_in.status == 200, f"{signed_in}\n{server.logs()}"
    return dict(signed_in.json)


def credentials(email: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD}


def assert_unavailable(answer: Answer, what: str) -> None:
    """503 in the envelope with Retry-After, within the time a client may wait."""
    assert answer.status == 503, f"{what}: {answer}"
    assert answer.seconds < ANSWER_WITHIN_S, f"{what}: {answer}"
    body = answer.json
    assert body["error"]["code"] == "service_unavailable", f"{what}: {answer}"
    assert body["error"]["message"], f"{what}: {answer}"
    assert body["request_id"] == answer.headers["x-request-id"], f"{what}: {answer}"
    assert int(answer.headers["retry-after"]) > 0, f"{what}: {answer}"
    assert "SELECT" not in answer.body.decode(), f"{what}: SQL in the answer"


def server_errors(server: Server) -> list[str]:
    """The app's access lines with a 5xx other than 503, and unhandled exceptions."""
    found = []
    for line in server.stdout.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        status = entry.get("status")
        if isinstance(status, int) and status >= 500 and status != 503:
            found.append(line)
        if entry.get("message") == "unhandled exception":
            found.append(line)
    return found


def test_every_endpoint_family_answers_503_while_the_database_is_cut(
    start_server: Any, proxy: TcpProxy
) -> None:
    """Sign-in, registration, /me, /health, refresh, sessions and two-factor: 503 with the
    envelope and Retry-After within 5 s, then 200/201 again once the database is back."""
    server: Server = start_server()
    tokens = sign_up(server, "before@example.com")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert server.call("GET", "/api/v1/auth/me", headers=bearer).status == 200
    assert server.call("GET", "/health").status == 200

    proxy.cut()
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/auth/login", {"body": credentials("before@example.com")}),
        ("POST", "/api/v1/auth/register", {"body": credentials("during@example.com")}),
        ("GET", "/api/v1/auth/me", {"headers": bearer}),  # a token issued before the cut
        ("GET", "/health", {}),
        # the other families: token rotation, sessions, two-factor
        ("POST", "/api/v1/auth/refresh", {"body": {"refresh_token": tokens["refresh_token"]}}),
        ("GET", "/api/v1/auth/sessions", {"headers": bearer}),
        ("GET", "/api/v1/2fa/status", {"headers": bearer}),
    ]
    # Three rounds, so that each of the two workers meets the outage with its pooled
    # connections (just reset by the cut) and then with no database at all.
    for _ in range(3):
        for method, path, kwargs in calls:
            answer = server.call(method, path, **kwargs)
            assert_unavailable(answer, f"{method} {path}")
            if path == "/health":
                assert answer.json["status"] == "down"
                assert answer.json["checks"]["database"]["status"] == "down"
    assert proxy.refused > 0, "the server never tried to reconnect"
    assert server.call("GET", "/health/live").status == 200  # the process still serves

    proxy.restore()
    assert server.call("GET", "/health").status == 200
    for _ in range(3):  # every worker is back
        assert server.call("GET", "/api/v1/auth/me", headers=bearer).status == 200
        log_in(server, "before@example.com")
    # the refresh token was never spent by the attempts that failed
    refreshed = server.call(
        "POST", "/api/v1/auth/refresh", body={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status == 200, refreshed
    after = server.call("POST", "/api/v1/auth/register", body=credentials("after@example.com"))
    assert after.status == 201, after
    assert server_errors(server) == [], server.logs()


def test_an_exhausted_pool_answers_503_not_500_on_a_running_server(
    start_server: Any, proxy: TcpProxy
) -> None:
    """One connection per worker, and a database so slow that requests queue for it."""
    server: Server = start_server(
        DB_POOL_SIZE="1",
        DB_MAX_OVERFLOW="0",
        DB_POOL_TIMEOUT="1",
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS="8",
    )
    tokens = sign_up(server, "pool@example.com")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    def me(_: int) -> Answer:
        return server.call("GET", "/api/v1/auth/me", headers=bearer, timeout=30)

    proxy.delay(1.5)  # every round trip to PostgreSQL now takes 3 s
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(me, range(8)))
    proxy.restore()

    statuses = sorted(answer.status for answer in answers)
    assert set(statuses) <= {200, 503}, f"{statuses}\n{server.logs()}"
    refused = [answer for answer in answers if answer.status == 503]
    assert len(refused) >= 6, statuses  # only one request at a time had the connection
    for answer in refused:
        assert_unavailable(answer, "GET /api/v1/auth/me with the pool exhausted")

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert [answer.status for answer in pool.map(me, range(8))] == [200] * 8
    assert server_errors(server) == [], server.logs()
