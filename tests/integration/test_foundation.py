"""The service skeleton over HTTP: error envelope, request ids, logs, health."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import PASSWORD, make_app

pytestmark = pytest.mark.integration


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_unknown_path_is_404_in_the_envelope(client):
    assert_envelope(client.get("/api/v1/nope"), 404, "not_found")


def test_wrong_method_is_405_in_the_envelope(client):
    response = client.get("/api/v1/auth/login")
    assert_envelope(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_non_json_body_is_415(client):
    response = client.post("/api/v1/auth/login", data="email=a", content_type="text/plain")
    assert_envelope(response, 415, "unsupported_media_type")


def test_malformed_json_is_400(client):
    response = client.post("/api/v1/auth/login", data='{"email": ', content_type="application/json")
    assert_envelope(response, 400, "bad_request")


def test_deeply_nested_json_is_400_not_500(client):
    body = '{"email": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert_envelope(response, 400, "bad_request")


def test_body_over_the_limit_is_413(client):
    body = json.dumps({"email": "a@b.co", "password": "x" * 70_000})
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert_envelope(response, 413, "payload_too_large")


def test_invalid_fields_are_422_with_field_details(client):
    response = client.post("/api/v1/auth/login", json={"email": "not-an-email", "extra": 1})
    body = assert_envelope(response, 422, "validation_error")
    assert set(body["error"]["details"]) == {"email", "password", "extra"}


def test_unexpected_exception_is_a_generic_500_and_logged_with_request_id(signing_key_pem, capsys):
    app = make_app(signing_key_pem)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals: password=hunter2")

    response = app.test_client().get("/boom", headers={"X-Request-ID": "trace-500"})
    body = assert_envelope(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)
    assert body["request_id"] == "trace-500"
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    failure = next(line for line in lines if line["message"] == "unhandled exception")
    assert failure["request_id"] == "trace-500"
    assert "RuntimeError" in failure["exc_info"]
    assert "hunter2" not in json.dumps(lines)


def test_request_id_is_echoed_when_sane(client):
    response = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


@pytest.mark.parametrize("incoming", [None, "bad id with spaces", "x" * 500])
def test_request_id_is_generated_otherwise(client, incoming):
    headers = {"X-Request-ID": incoming} if incoming else {}
    response = client.get("/health/live", headers=headers)
    generated = response.headers["X-Request-ID"]
    assert generated and generated != incoming and len(generated) == 32


def test_each_request_logs_one_json_line_with_request_id_and_no_password(client, capsys):
    capsys.readouterr()
    client.post(
        "/api/v1/auth/login",
        json={"email": "nobody@example.com", "password": PASSWORD},
        headers={"X-Request-ID": "log-test-1"},
    )
    out = capsys.readouterr().out
    assert PASSWORD not in out
    lines = [json.loads(line) for line in out.splitlines()]
    access = [line for line in lines if line["message"] == "request"]
    assert len(access) == 1
    assert access[0]["request_id"] == "log-test-1"
    assert access[0]["method"] == "POST"
    assert access[0]["path"] == "/api/v1/auth/login"
    assert access[0]["status"] == 401
    assert isinstance(access[0]["duration_ms"], float)
    assert all(line["request_id"] == "log-test-1" for line in lines)


def test_liveness(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_health_is_ok_with_database_and_redis_up(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert response.json["checks"]["database"]["status"] == "up"
    assert response.json["checks"]["redis"]["status"] == "up"
    assert response.json["checks"]["broker"] == {"status": "not_configured"}


@pytest.mark.config(SQLALCHEMY_DATABASE_URI="postgresql://postgres@127.0.0.1:1/x")
def test_health_is_503_quickly_when_the_database_refuses(configured_client):
    started = time.monotonic()
    response = configured_client.get("/health")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json["checks"]["database"]["status"] == "down"
    # the report inside the envelope every 503 of the service has
    assert response.json["status"] == "down"
    assert response.json["error"]["code"] == "service_unavailable"
    assert response.json["request_id"] == response.headers["X-Request-ID"]
    assert int(response.headers["Retry-After"]) > 0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung database)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_health_does_not_hang_on_a_database_that_never_answers(signing_key_pem, silent_server):
    app = make_app(
        signing_key_pem,
        SQLALCHEMY_DATABASE_URI=f"postgresql://postgres@127.0.0.1:{silent_server}/x",
        HEALTH_CHECK_TIMEOUT=1.0,
    )
    started = time.monotonic()
    response = app.test_client().get("/health")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json["checks"]["database"] == {"status": "down", "error": "timeout"}


@pytest.mark.config(REDIS_URL="redis://127.0.0.1:1/0")
def test_health_is_degraded_not_down_when_redis_is_unreachable(configured_client):
    response = configured_client.get("/health")
    assert response.status_code == 200
    assert response.json["status"] == "degraded"
    assert response.json["checks"]["redis"]["status"] == "down"
    assert response.json["checks"]["database"]["status"] == "up"
