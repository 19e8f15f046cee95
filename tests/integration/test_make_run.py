"""`make run` serves like production, `make dev` like a development server (issue 16).

The recipes are taken from the Makefile itself (``make -n``) and run in a scratch checkout:
symbolic links to the package, the migrations, gunicorn.conf.py and the virtualenv, so the
instance folder (SQLite database, generated key, metrics files) is the scratch one, never the
developer's. Nothing else is set: the development defaults are what is tested.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD
from tests.running_server import ROOT, Server, base_environment, free_port, start

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACCESS = "auth_microservice_app.access: request"


def recipe(target: str) -> list[str]:
    """The shell lines ``make <target>`` runs (installation taken as done)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", target],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout whose instance folder is its own: the code, nothing else."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in ("auth_microservice_app", "migrations"):
        (root / name).symlink_to(ROOT / name)
    # a copy: gunicorn resolves a linked config file to where it points, and places the
    # development metrics directory next to the file
    (root / "gunicorn.conf.py").write_text((ROOT / "gunicorn.conf.py").read_text())
    (root / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return root


@pytest.fixture
def run_make(checkout: Path, tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def run(target: str) -> Server:
        port = free_port()
        env = {**base_environment(), "PORT": str(port)}  # APP_ENV unset: development
        *before, serve = recipe(target)
        for line in before:  # `migrate`: flask db upgrade on the embedded SQLite
            done = subprocess.run(  # noqa: S603 - the Makefile's own recipe
                ["bash", "-c", line], cwd=checkout, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        server = start(
            ["bash", "-c", serve],  # its own process group: stop() ends it all
            env=env,
            port=port,
            log_dir=tmp_path,
            name=target,
            cwd=checkout,
        )
        servers.append(server)
        return server

    yield run
    for server in servers:
        server.stop()


def test_make_run_is_gunicorn_with_gunicorn_conf_and_make_dev_the_development_server() -> None:
    *migrate, serve = recipe("run")
    assert migrate == [".venv/bin/flask --app auth_microservice_app.app db upgrade heads"]
    assert shlex.split(serve) == [
        ".venv/bin/gunicorn",
        "-c",
        "gunicorn.conf.py",
        "auth_microservice_app.wsgi:app",
    ]
    *migrate, serve = recipe("dev")
    assert migrate == [".venv/bin/flask --app auth_microservice_app.app db upgrade heads"]
    assert serve.endswith(".venv/bin/python -m auth_microservice_app.app")


def gunicorn_settings(conf: Path, env: dict[str, str]) -> dict[str, Any]:
    """What gunicorn.conf.py resolves to under ``env`` (in a process of its own: it may
    change os.environ, as it does in the server)."""
    code = (
        "import json, os, runpy, sys; c = runpy.run_path(sys.argv[1]); "
        "print(json.dumps({k: c[k] for k in ('bind', 'workers', 'accesslog')} | "
        "{'metrics_dir': os.environ.get('PROMETHEUS_MULTIPROC_DIR')}))"
    )
    result = subprocess.run(  # noqa: S603 - our interpreter on our file
        [sys.executable, "-c", code, str(conf)],
        env={**base_environment(), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    settings: dict[str, Any] = json.loads(result.stdout)
    return settings


def cpu_workers() -> int:
    code = "import runpy; print(runpy.run_path('gunicorn.conf.py')['_cpu_workers'])"
    env = {**base_environment(), "APP_ENV": "production"}
    result = subprocess.run(  # noqa: S603 - our interpreter on our file
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return int(result.stdout)


def test_gunicorn_conf_development_defaults_and_the_deployed_ones(tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text((ROOT / "gunicorn.conf.py").read_text())
    development = gunicorn_settings(conf, {})
    assert development["bind"] == ["127.0.0.1:5000"]  # where the app's own defaults say
    assert 1 <= development["workers"] <= 4
    assert development["workers"] == min(cpu_workers(), 4)
    assert development["metrics_dir"] == str(tmp_path / "instance" / "prometheus-multiproc")
    assert development["accesslog"] is None

    # .env as create_app reads it; .env.example's empty lines mean the defaults
    example = (ROOT / ".env.example").read_text()
    (tmp_path / ".env").write_text(f"{example}\nPORT=5999\nGUNICORN_WORKERS=2\n")
    from_dotenv = gunicorn_settings(conf, {})
    assert (from_dotenv["bind"], from_dotenv["workers"]) == (["127.0.0.1:5999"], 2)
    assert from_dotenv["metrics_dir"] == development["metrics_dir"]
    assert from_dotenv["accesslog"] is None

    deployed = gunicorn_settings(conf, {"APP_ENV": "production"})
    assert deployed["bind"] == ["0.0.0.0:8000"]
    assert deployed["workers"] == cpu_workers()
    assert deployed["metrics_dir"] is None  # the deployment sets it (deployment.yaml, compose)
    assert deployed["accesslog"] is None

    asked = gunicorn_settings(conf, {"APP_ENV": "production", "GUNICORN_ACCESS_LOG": "-"})
    assert asked["accesslog"] == "-"


def lines_with(server: Server, needle: str) -> list[str]:
    """Lines of the server's output (stdout and stderr) containing ``needle``, once settled."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        found = [line for line in output(server) if needle in line]
        if found:
            break
        time.sleep(0.1)
    time.sleep(0.3)  # a second line for the same request would be written by now
    return [line for line in output(server) if needle in line]


def output(server: Server) -> list[str]:
    text = server.stdout.read_text(errors="replace") + server.stderr.read_text(errors="replace")
    return text.splitlines()


def assert_one_access_line(server: Server, path: str) -> str:
    request_id = uuid.uuid4().hex
    answer = server.call("GET", path, headers={"X-Request-ID": request_id})
    assert answer.status == 200, answer
    lines = lines_with(server, request_id)
    assert len(lines) == 1, lines
    assert ACCESS in lines[0] and f"path={path}" in lines[0] and "status=200" in lines[0]
    # Neither gunicorn's access line nor Werkzeug's ("GET /path HTTP/1.1" 200)
    assert not [line for line in output(server) if f'"GET {path}' in line], server.logs()
    return lines[0]


def assert_prometheus_text(server: Server) -> None:
    assert server.call("GET", "/.well-known/jwks.json").status == 200  # counted (/health is not)
    answer = server.call("GET", "/metrics")
    assert answer.status == 200, answer
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.body.decode()
    assert "# TYPE auth_logins_total counter" in text
    assert re.search(r'^flask_http_request_total\{.*status="200"\} \d', text, re.MULTILINE), text


def credentials(email: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD}


def test_make_run_serves_metrics_under_gunicorn_with_one_access_line_per_request(
    run_make: Any, checkout: Path
) -> None:
    server: Server = run_make("run")
    assert server.call("GET", "/health/live").headers["server"] == "gunicorn"
    health = server.call("GET", "/health")
    assert health.status == 200, health
    assert health.json["checks"]["database"]["status"] == "up"  # SQLite in the instance folder
    assert health.json["checks"]["redis"] == {"status": "not_configured"}
    assert (checkout / "instance" / "auth.db").is_file()

    # Every worker loaded the app (each writes its metrics files as it does)...
    metrics_dir = checkout / "instance" / "prometheus-multiproc"
    workers = min(cpu_workers(), 4)
    deadline = time.monotonic() + 60
    while len({p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("*.db")}) < workers:
        assert time.monotonic() < deadline, f"{workers} workers never loaded\n{server.logs()}"
        time.sleep(0.2)
    # ...and all sign with the one key migrate generated, whichever answers.
    assert len(list((checkout / "instance" / "jwt-keys").glob("*.pem"))) == 1

    # Several processes write to the one SQLite file at once. A worker whose hash thread and
    # waiting places are taken answers 503 with Retry-After (issue 15): a client tries again.
    emails = [f"user{n}@example.com" for n in range(8)]

    def register(email: str) -> Any:
        for _ in range(20):
            answer = server.call("POST", "/api/v1/auth/register", body=credentials(email))
            if answer.status != 503:
                return answer
            assert answer.json["error"]["code"] == "service_unavailable", answer
            wait = float(answer.headers["retry-after"])
            assert wait <= 5, answer
            time.sleep(wait)  # as the answer asks
        return answer

    with ThreadPoolExecutor(max_workers=8) as pool:
        registered = list(pool.map(register, emails))
    assert [answer.status for answer in registered] == [201] * 8, registered
    for email in emails:
        signed_in = server.call("POST", "/api/v1/auth/login", body=credentials(email))
        assert signed_in.status == 200, signed_in
        bearer = {"Authorization": f"Bearer {signed_in.json['access_token']}"}
        for _ in range(3):  # tokens from one worker are good in every other
            assert server.call("GET", "/api/v1/auth/me", headers=bearer).status == 200

    assert_one_access_line(server, "/health/live")
    assert_prometheus_text(server)
    assert not [line for line in output(server) if "gunicorn.access" in line]


def test_make_dev_keeps_the_reloader_and_writes_one_access_line_per_request(
    run_make: Any,
) -> None:
    server: Server = run_make("dev")
    assert server.call("GET", "/health/live").headers["server"].startswith("Werkzeug")
    assert any("Debugger is active" in line for line in output(server)), server.logs()
    assert any("Restarting with" in line for line in output(server)), server.logs()  # reloader
    line = assert_one_access_line(server, "/health")
    assert "duration_ms=" in line
    assert_prometheus_text(server)


def test_the_readme_keeps_make_run_and_make_test_as_the_two_commands_and_shows_make_dev() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    two = readme.split("## The two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in two.strip().splitlines()] == [
        "make run",
        "make test",
    ]
    assert "`make dev`" in readme
