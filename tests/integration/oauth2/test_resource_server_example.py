"""examples/resource_server, started as its README says, against the real running service.

The auth service runs under gunicorn on the test PostgreSQL and Redis; the example runs under
gunicorn too, with the auth-service-client package. A user's token passes, and fails once
revoked (within the example's introspection cache time); a service token with the right scope
passes, one without it gets 403.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from auth_service_client import ClientCredentials
from flask import Flask

from auth_microservice_app.identity import clients
from tests.conftest import PASSWORD
from tests.running_server import (
    ROOT,
    Server,
    base_environment,
    free_port,
    start,
    start_service,
    venv_bin,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CACHE_SECONDS = 2


@pytest.fixture(scope="module")
def auth_service(
    app: Flask, signing_key_pem: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    """The service under gunicorn on the test database (migrated by ``app``), and its env."""
    logs = tmp_path_factory.mktemp("auth-service")
    port = free_port()
    # the issuer is the address the example and the clients reach the service at
    server = start_service(logs, signing_key_pem, port=port, JWT_ISSUER=f"http://127.0.0.1:{port}")
    yield server, server.env
    server.stop()


def new_client(app: Flask, name: str, scope: str) -> dict[str, str]:
    """What ``clients create NAME --scope S --json`` prints (the CLI itself is tested in
    test_revoke_and_discovery.py; in-process here, because each test starts with empty tables)."""
    with app.app_context():
        row, secret = clients.create_client(name, [scope])
        return {"client_id": row.client_id, "client_secret": secret}


@pytest.fixture
def services(
    app: Flask, auth_service: tuple[Server, dict[str, str]], tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """The clients (made per test: each test starts with empty tables) and the example."""
    server, env = auth_service
    gateway = new_client(app, "orders-api", "introspect")
    reader = new_client(app, "reports", "orders:read")
    other = new_client(app, "mailer", "mail:send")
    port = free_port()
    example_env = {
        **base_environment(),
        "AUTH_ISSUER": env["JWT_ISSUER"],
        "AUTH_CLIENT_ID": gateway["client_id"],
        "AUTH_CLIENT_SECRET": gateway["client_secret"],
        "AUTH_INTROSPECTION_CACHE": str(CACHE_SECONDS),
    }
    command = [str(venv_bin() / "gunicorn"), "--chdir", "examples/resource_server"]
    command += ["-b", f"127.0.0.1:{port}", "app:app"]
    example = start(
        command, env=example_env, port=port, log_dir=tmp_path, name="example", live_path="/"
    )
    yield {
        "auth": server,
        "example": example,
        "issuer": env["JWT_ISSUER"],
        "reader": reader,
        "other": other,
    }
    example.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(auth_service: Server, email: str) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD}
    assert auth_service.call("POST", "/api/v1/auth/register", body=body).status == 201
    answer = auth_service.call("POST", "/api/v1/auth/login", body=body)
    assert answer.status == 200, answer
    return dict(answer.json)


def test_a_users_token_passes_and_fails_once_revoked(services):
    auth_service, example = services["auth"], services["example"]
    tokens = sign_in(auth_service, "reader@example.com")
    answer = example.call("GET", "/profile", headers=bearer(tokens["access_token"]))
    assert answer.status == 200, f"{answer}\n{example.logs()}\n{auth_service.logs()}"
    assert answer.json["email"] == "reader@example.com"

    assert auth_service.call(
        "POST", "/api/v1/auth/logout", headers=bearer(tokens["access_token"])
    ).status in (200, 204)
    logged_out = time.monotonic()
    deadline = logged_out + CACHE_SECONDS + 3  # the cache time, and a margin for a loaded CI
    while True:
        answer = example.call("GET", "/profile", headers=bearer(tokens["access_token"]))
        if answer.status != 200 or time.monotonic() > deadline:
            break
    assert answer.status == 401, answer
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_a_service_token_needs_the_routes_scope(services):
    example = services["example"]
    token_url = f"{services['issuer']}/oauth2/token"
    reader = ClientCredentials(
        token_url, services["reader"]["client_id"], services["reader"]["client_secret"]
    )
    other = ClientCredentials(
        token_url, services["other"]["client_id"], services["other"]["client_secret"]
    )
    allowed = example.call("GET", "/orders", headers=reader.auth_header())
    assert allowed.status == 200, allowed
    assert allowed.json["for"] == services["reader"]["client_id"]

    refused = example.call("GET", "/orders", headers=other.auth_header())
    assert refused.status == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    # any valid token may read its own profile route
    assert example.call("GET", "/profile", headers=other.auth_header()).status == 200


def test_no_token_and_a_forged_token_are_401(services):
    example = services["example"]
    assert example.call("GET", "/orders").status == 401
    forged = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IngifQ.e30.c2ln"
    assert example.call("GET", "/orders", headers=bearer(forged)).status == 401


def test_the_readme_names_this_test():
    readme = (Path(ROOT) / "examples" / "resource_server" / "README.md").read_text()
    assert "tests/integration/oauth2/test_resource_server_example.py" in readme
