"""Start the real server in a subprocess (gunicorn, or any command that serves HTTP), talk to
it over a socket, and stop it with its whole process group.

For tests that need what only a running server shows: several worker processes, the
environment a deployment gives, a database that goes away while it serves.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[1]
STARTUP_DEADLINE_S = 60.0
#: What the ingress (and the Kubernetes probes) add: TLS ended in front, one proxy hop.
BEHIND_THE_PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}


def venv_bin() -> Path:
    """The bin directory of the interpreter running the tests (.venv/bin under `make test`)."""
    candidate = Path(sys.executable).parent
    return candidate if (candidate / "gunicorn").exists() else ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.status} after {self.seconds:.2f}s: {self.body[:300]!r}"


def call(
    port: int,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    source: str | None = None,
) -> Answer:
    """One request on its own connection; the status, headers, body and time it took.

    ``source``: the loopback address to send from (any of 127.0.0.0/8), for a proxy that
    tells clients apart by address."""
    source_address = (source, 0) if source is not None else None
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=source_address
    )
    sent = dict(headers or {})
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    started = time.monotonic()
    try:
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        data = response.read()
        return Answer(
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            data,
            time.monotonic() - started,
        )
    finally:
        connection.close()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request
    env: dict[str, str] = field(default_factory=dict)  # what it was started with

    @property
    def url(self) -> str:
        """The base URL, for clients that take one (``requests``, PyJWKClient, Node)."""
        return f"http://127.0.0.1:{self.port}"

    def flask(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``flask --app auth_microservice_app.app ARGS`` with the server's environment: what
        an operator runs beside a deployment (``clients create``, ``keys rotate``...)."""
        return subprocess.run(  # noqa: S603 - the app's own CLI
            [*flask_command(), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def logs(self) -> str:
        return (
            f"--- stdout ---\n{self.stdout.read_text(errors='replace')[-6000:]}\n"
            f"--- stderr ---\n{self.stderr.read_text(errors='replace')[-6000:]}"
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return call(self.port, method, path, headers=headers, **kwargs)

    def wait_until_live(self, path: str = "/health/live") -> None:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}\n{self.logs()}")
            try:
                answer = self.call("GET", path, timeout=2.0)
                if answer.status == 200:
                    return
                last_error = str(answer)
            except OSError as exc:
                last_error = repr(exc)
            time.sleep(0.2)
        pytest.fail(f"{path} not 200 within {STARTUP_DEADLINE_S}s ({last_error})\n{self.logs()}")

    def stop(self) -> int | None:
        """SIGTERM to the process group, a bounded wait, then SIGKILL; the exit status."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode


def start(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    port: int,
    log_dir: Path,
    cwd: Path = ROOT,
    name: str = "server",
    headers: Mapping[str, str] | None = None,
    live_path: str | None = "/health/live",
) -> Server:
    """Run ``command`` in its own process group with exactly ``env``; wait until it serves."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(  # noqa: S603 - the tests' own commands
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, so stop() reaches the workers
        )
    server = Server(process, port, stdout, stderr, dict(headers or {}), dict(env))
    if live_path is not None:
        try:
            server.wait_until_live(live_path)
        except BaseException:
            server.stop()
            raise
    return server


def gunicorn_command() -> list[str]:
    """How the image, compose and Kubernetes start the API (the Dockerfile's CMD)."""
    gunicorn = str(venv_bin() / "gunicorn")
    return [gunicorn, "-c", "gunicorn.conf.py", "auth_microservice_app.wsgi:app"]


def flask_command() -> list[str]:
    """The app's CLI, as the image's migration job and operators run it."""
    return [str(venv_bin() / "flask"), "--app", "auth_microservice_app.app"]


def base_environment() -> dict[str, str]:
    """What any process needs besides the service's settings: no setting leaks in."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    return env


def service_environment(
    port: int, workdir: Path, signing_key_pem: str, **overrides: str
) -> dict[str, str]:
    """The environment the tests run the service with, ``overrides`` last.

    APP_ENV testing on the run's PostgreSQL database and Redis, listening on 127.0.0.1:``port``,
    signing with ``signing_key_pem`` (written to ``workdir``/jwt.pem, where
    JWT_PRIVATE_KEY_FILE points), mail as files in ``workdir``/mail, two gunicorn workers.
    """
    key_file = workdir / "jwt.pem"
    key_file.write_text(signing_key_pem)
    return {
        **base_environment(),
        "APP_ENV": "testing",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL,
        # generous, as in the conftest's apps: a loaded machine must not trip the breaker
        "REDIS_SOCKET_TIMEOUT": "3",
        "JWT_PRIVATE_KEY_FILE": str(key_file),
        "JWT_ISSUER": "https://auth.test",
        "FRONTEND_URL": "https://app.test",
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_DIR": str(workdir / "mail"),
        "GUNICORN_WORKERS": "2",
        **overrides,
    }


def start_service(
    workdir: Path,
    signing_key_pem: str,
    *,
    port: int | None = None,
    name: str = "server",
    headers: Mapping[str, str] | None = None,
    **overrides: str,
) -> Server:
    """The service under gunicorn with gunicorn.conf.py (as the image runs it), started with
    ``service_environment`` and ``overrides``, logging to ``workdir``; serving once it returns.

    ``port``: a free one unless given (give one when a setting must name it)."""
    port = free_port() if port is None else port
    env = service_environment(port, workdir, signing_key_pem, **overrides)
    return start(
        gunicorn_command(), env=env, port=port, log_dir=workdir, name=name, headers=headers
    )
