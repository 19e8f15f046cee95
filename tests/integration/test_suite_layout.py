"""How the suite itself is laid out: tests/unit runs with neither PostgreSQL nor Redis.

A unit test that needs the database (or a conftest that makes one for every run) belongs under
tests/integration; this runs tests/unit in a subprocess with both services pointed at a
tripwire, a port that accepts and at once closes every connection and counts them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT_TESTS_DEADLINE_S = 180.0


class Tripwire:
    """A loopback port that refuses service: each connection is accepted, counted, closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def tripwires() -> Iterator[tuple[Tripwire, Tripwire]]:
    postgres, redis = Tripwire(), Tripwire()
    yield postgres, redis
    postgres.close()
    redis.close()


@pytest.mark.slow
def test_unit_tests_pass_without_postgresql_or_redis(
    tripwires: tuple[Tripwire, Tripwire],
) -> None:
    postgres, redis = tripwires
    unreachable_database = f"postgresql://postgres@127.0.0.1:{postgres.port}/test"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TEST_", "PYTEST_"))  # this run's database, its own test id
    }
    env.update(
        TEST_DATABASE_URL=unreachable_database,
        TEST_DATABASE_URL_BASE=unreachable_database,
        TEST_REDIS_URL=f"redis://127.0.0.1:{redis.port}/13",
    )
    run = subprocess.run(
        # -x: a unit test that waits on a service fails at once instead of 600 times over
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "tests/unit"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=UNIT_TESTS_DEADLINE_S,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in summary and "error" not in summary, summary
    assert (postgres.connections, redis.connections) == (0, 0), (
        f"tests/unit connected to PostgreSQL {postgres.connections} and Redis "
        f"{redis.connections} times: {summary}"
    )


@pytest.mark.config(TOTP_ISSUER="Marked Corp", SESSION_MAX_PER_USER=7)
def test_the_config_marker_builds_its_own_app_on_the_same_database(configured_app, app, mailbox):
    assert configured_app is not app
    assert configured_app.config["TOTP_ISSUER"] == "Marked Corp"
    assert configured_app.config["SESSION_MAX_PER_USER"] == 7
    assert app.config["TOTP_ISSUER"] != "Marked Corp"
    assert configured_app.config["SQLALCHEMY_DATABASE_URI"] == app.config["SQLALCHEMY_DATABASE_URI"]
    assert configured_app.config["REDIS_URL"] == app.config["REDIS_URL"]
    assert configured_app.config["EMAIL_FILE_DIR"] == mailbox.directory  # its mail, readable
