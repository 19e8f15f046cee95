"""Issue 15, F4: a login flood must not leave a gunicorn worker fatter by 19 MiB per thread.

glibc gives every thread that allocates argon2's memory a malloc arena of its own and keeps
the memory there after the hash. While request threads hashed, a flood of parallel logins
grew each gthread worker by threads x ARGON2_MEMORY_COST (8 threads: ~150 MiB) although only
one hash ran at a time. Hashes now run on ARGON2_MAX_CONCURRENT threads of their own, so the
growth is bounded by that many arenas. Real gunicorn, gunicorn.conf.py, one worker with 8
threads, production argon2 parameters, PostgreSQL and Redis.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import TEST_REDIS_URL
from tests.integration.test_gunicorn import (
    ROOT,
    Server,
    free_port,
    gunicorn_executable,
    stop,
    wait_until_live,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

THREADS = 8
ROUNDS = 4
ARENA_MIB = 19  # ARGON2_MEMORY_COST=19456 KiB


@pytest.fixture
def flood_server(app, tmp_path: Path) -> Iterator[Server]:
    """One gthread worker of 8 threads, one hash thread, production argon2 (the ``app``
    fixture has migrated the run's database)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "jwt-private-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    metrics_dir = tmp_path / "prometheus-multiproc"
    metrics_dir.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "testing",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": os.environ["TEST_DATABASE_URL"],
        "REDIS_URL": TEST_REDIS_URL,
        "JWT_PRIVATE_KEY_FILE": str(key_file),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": str(THREADS),
        "GUNICORN_MAX_REQUESTS": "0",
        "GUNICORN_ACCESS_LOG": "",
        "ARGON2_TIME_COST": "2",
        "ARGON2_MEMORY_COST": str(ARENA_MIB * 1024),
        "ARGON2_PARALLELISM": "1",
        "ARGON2_MAX_CONCURRENT": "1",
        # every login of the flood waits for its hash: none is refused, all of them hash
        "ARGON2_QUEUE_TIMEOUT": "60",
        "ARGON2_MAX_WAITING": str(THREADS),
        "LOGIN_UNKNOWN_BUDGET": "0",
        "RATELIMIT_ENABLED": "false",
    }
    # MALLOC_ARENA_MAX unset: glibc's default, as measured in the finding
    for inherited in ("JWT_PRIVATE_KEY", "JWT_KEYS_DIR", "MALLOC_ARENA_MAX"):
        env.pop(inherited, None)
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [
                str(gunicorn_executable()),
                "-c",
                "gunicorn.conf.py",
                "auth_microservice_app.wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    running = Server(process, port, stdout, stderr, metrics_dir)
    try:
        wait_until_live(running)
        yield running
    finally:
        stop(process)


def worker_pid(master: int) -> int:
    children = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _ppid(entry) == master
    ]
    assert len(children) == 1, children
    return children[0]


def _ppid(entry: Path) -> int | None:
    try:
        stat = (entry / "stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def login(port: int, index: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"email": f"nobody-{index}@example.com", "password": "a wrong password"})
    try:
        connection.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def health(port: int, _: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", "/health/live")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_login_flood_grows_a_worker_by_at_most_its_hash_threads_arenas(flood_server):
    port = flood_server.port
    pid = worker_pid(flood_server.process.pid)
    with ThreadPoolExecutor(max_workers=THREADS) as clients:
        # every request thread exists and has served, and the hash thread has hashed once
        assert set(clients.map(lambda i: health(port, i), range(4 * THREADS))) == {200}
        assert login(port, -1) == 401
        before = rss_mib(pid)
        statuses = list(clients.map(lambda i: login(port, i), range(ROUNDS * THREADS)))
    after = rss_mib(pid)

    assert set(statuses) == {401}, flood_server.logs()
    # before the fix: ~(THREADS - 1) x 19 MiB more (one arena per request thread that hashed)
    assert after - before < 2 * ARENA_MIB, f"RSS {before:.0f} -> {after:.0f} MiB"
