"""The production server as deployed: real gunicorn, gunicorn.conf.py, two worker processes.

Checks what only a running server shows: it starts and serves the health routes, the
prometheus multiprocess directory is prepared, each request leaves one access line (the app's,
with its request id; gunicorn's own is off unless asked for, then JSON without query strings),
and SIGTERM (what Kubernetes sends) finishes an in-flight request and exits 0.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.running_server import Server, start_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GRACEFUL_TIMEOUT_S = 10
# Exit must come within the graceful timeout, plus the time a worker takes to notice.
EXIT_DEADLINE_S = GRACEFUL_TIMEOUT_S + 5


@pytest.fixture
def server(tmp_path: Path, signing_key_pem: str) -> Iterator[Server]:
    yield from run_server(tmp_path, signing_key_pem)


@pytest.fixture
def server_with_gunicorn_access_log(tmp_path: Path, signing_key_pem: str) -> Iterator[Server]:
    yield from run_server(tmp_path, signing_key_pem, GUNICORN_ACCESS_LOG="-")


def run_server(tmp_path: Path, signing_key_pem: str, **settings: str) -> Iterator[Server]:
    metrics_dir = tmp_path / "prometheus-multiproc"
    metrics_dir.mkdir()
    # A file left by a previous run: on_starting must clear it.
    (metrics_dir / "counter_99999.db").write_bytes(b"stale")
    running = start_service(
        tmp_path,
        signing_key_pem,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        GUNICORN_GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT_S),
        **settings,
    )
    try:
        yield running
    finally:
        running.stop()


def metrics_dir(server: Server) -> Path:
    return Path(server.env["PROMETHEUS_MULTIPROC_DIR"])


def test_serves_health_routes_as_json(server: Server) -> None:
    live = server.call("GET", "/health/live")
    assert live.status == 200
    assert live.json == {"status": "ok"}

    health = server.call("GET", "/health")
    assert health.status in (200, 503), server.logs()  # 503 only when the database is unreachable
    document = health.json
    assert document["status"] in {"ok", "degraded", "down"}
    assert "database" in document["checks"]


def test_prepares_the_prometheus_multiprocess_directory(server: Server) -> None:
    assert metrics_dir(server).is_dir()
    assert not (metrics_dir(server) / "counter_99999.db").exists(), "stale metrics file kept"


def stdout_lines_with(server: Server, request_id: str) -> list[dict[str, object]]:
    """The JSON stdout lines carrying ``request_id``, once at least one has been written."""
    deadline = time.monotonic() + 5.0
    found: list[dict[str, object]] = []
    while time.monotonic() < deadline and not found:
        complete = server.stdout.read_text(errors="replace").rpartition("\n")[0]
        lines = [json.loads(line) for line in complete.splitlines() if line.startswith("{")]
        found = [line for line in lines if request_id in json.dumps(line)]
        if not found:
            time.sleep(0.1)
    time.sleep(0.3)  # a second line for the same request would be written by now
    complete = server.stdout.read_text(errors="replace").rpartition("\n")[0]
    lines = [json.loads(line) for line in complete.splitlines() if line.startswith("{")]
    return [line for line in lines if request_id in json.dumps(line)]


def get_with_request_id(server: Server, path: str, request_id: str) -> int:
    return server.call("GET", path, headers={"X-Request-ID": request_id}, timeout=5.0).status


def test_each_request_leaves_one_access_line_the_apps_with_its_request_id(
    server: Server,
) -> None:
    """gunicorn's access log is off by default: the app's line is the only one."""
    request_id = "one-access-line-per-request"
    status = get_with_request_id(server, "/health/live?token=do-not-log-me", request_id)
    assert status == 200

    lines = stdout_lines_with(server, request_id)
    assert len(lines) == 1, lines
    (line,) = lines
    assert line["logger"] == "auth_microservice_app.access"
    assert line["request_id"] == request_id
    assert (line["method"], line["path"], line["status"]) == ("GET", "/health/live", 200)
    assert isinstance(line["duration_ms"], float)
    assert "do-not-log-me" not in server.stdout.read_text(errors="replace")
    assert '"gunicorn.access"' not in server.stdout.read_text(errors="replace")


def test_gunicorn_access_log_when_asked_for_is_json_without_query_strings(
    server_with_gunicorn_access_log: Server,
) -> None:
    server = server_with_gunicorn_access_log
    request_id = "gunicorn-access-line"
    status = get_with_request_id(server, "/health/live?token=do-not-log-me", request_id)
    assert status == 200
    lines = stdout_lines_with(server, request_id)
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert len(access) == 1, server.logs()
    assert access[0]["status"] == 200
    assert access[0]["method"] == "GET"
    assert access[0]["path"] == "/health/live"
    gunicorn_lines = [line for line in server.stdout.read_text().splitlines() if "gunicorn" in line]
    assert not any("do-not-log-me" in line for line in gunicorn_lines)


def test_sigterm_finishes_the_in_flight_request_and_exits_cleanly(server: Server) -> None:
    # A request whose body is still arriving is in flight inside a worker thread: the app
    # is blocked reading it. SIGTERM comes in the middle; the rest of the body after it.
    body = json.dumps({"email": "not-an-address", "password": "x"}).encode()
    head = (
        "POST /api/v1/auth/login HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=EXIT_DEADLINE_S) as client:
        client.sendall(head + body[:5])
        # Let a worker thread pick the request up (dispatch takes milliseconds). This pause
        # only orders the events; nothing is asserted on timing.
        time.sleep(1.0)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        client.sendall(body[5:])
        response = b""
        while chunk := client.recv(65536):
            response += chunk

    status_line = response.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), f"no HTTP response: {response[:200]!r}"
    status = int(status_line.split()[1])
    assert status < 500, f"in-flight request failed with {status}: {response[:500]!r}"

    try:
        returncode = server.process.wait(timeout=EXIT_DEADLINE_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gunicorn still running {EXIT_DEADLINE_S}s after SIGTERM\n{server.logs()}")
    assert returncode == 0, server.logs()
    assert "Shutting down: Master" in server.stderr.read_text(), server.logs()
