"""Issue 15, F4: a login flood must not leave a gunicorn worker fatter by 19 MiB per thread.

glibc gives every thread that allocates argon2's memory a malloc arena of its own and keeps
the memory there after the hash. While request threads hashed, a flood of parallel logins
grew each gthread worker by threads x ARGON2_MEMORY_COST (8 threads: ~150 MiB) although only
one hash ran at a time. Hashes now run on ARGON2_MAX_CONCURRENT threads of their own, so the
growth is bounded by that many arenas. Real gunicorn, gunicorn.conf.py, one worker with 8
threads, production argon2 parameters, PostgreSQL and Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.running_server import Server, start_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

THREADS = 8
ROUNDS = 4
ARENA_MIB = 19  # ARGON2_MEMORY_COST=19456 KiB


@pytest.fixture
def flood_server(app, tmp_path: Path, signing_key_pem: str) -> Iterator[Server]:
    """One gthread worker of 8 threads, one hash thread, production argon2 (the ``app``
    fixture has migrated the run's database). MALLOC_ARENA_MAX unset: glibc's default, as
    measured in the finding."""
    metrics_dir = tmp_path / "prometheus-multiproc"
    metrics_dir.mkdir()
    running = start_service(
        tmp_path,
        signing_key_pem,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS=str(THREADS),
        GUNICORN_MAX_REQUESTS="0",
        GUNICORN_ACCESS_LOG="",
        ARGON2_TIME_COST="2",
        ARGON2_MEMORY_COST=str(ARENA_MIB * 1024),
        ARGON2_PARALLELISM="1",
        ARGON2_MAX_CONCURRENT="1",
        # every login of the flood waits for its hash: none is refused, all of them hash
        ARGON2_QUEUE_TIMEOUT="60",
        ARGON2_MAX_WAITING=str(THREADS),
        LOGIN_UNKNOWN_BUDGET="0",
        RATELIMIT_ENABLED="false",
    )
    try:
        yield running
    finally:
        running.stop()


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


def login(server: Server, index: int) -> int:
    body = {"email": f"nobody-{index}@example.com", "password": "a wrong password"}
    return server.call("POST", "/api/v1/auth/login", body=body, timeout=60).status


def health(server: Server, _: int) -> int:
    return server.call("GET", "/health/live", timeout=60).status


def test_a_login_flood_grows_a_worker_by_at_most_its_hash_threads_arenas(flood_server):
    server = flood_server
    pid = worker_pid(server.process.pid)
    with ThreadPoolExecutor(max_workers=THREADS) as clients:
        # every request thread exists and has served, and the hash thread has hashed once
        assert set(clients.map(lambda i: health(server, i), range(4 * THREADS))) == {200}
        assert login(server, -1) == 401
        before = rss_mib(pid)
        statuses = list(clients.map(lambda i: login(server, i), range(ROUNDS * THREADS)))
    after = rss_mib(pid)

    assert set(statuses) == {401}, server.logs()
    # before the fix: ~(THREADS - 1) x 19 MiB more (one arena per request thread that hashed)
    assert after - before < 2 * ARENA_MIB, f"RSS {before:.0f} -> {after:.0f} MiB"
