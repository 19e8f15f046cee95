"""Shared by every part of the bench: paths, the production environment, processes, the machine."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: Where the measured application code lives: a snapshot of the working tree (see snapshot()),
#: so that colleagues' edits during a run never reach a worker that gunicorn recycles.
APP_ROOT = REPO
SNAPSHOT_SOURCE = REPO
SNAPSHOT_ITEMS = ("auth_microservice_app", "migrations", "gunicorn.conf.py", "pyproject.toml")
RESULTS_DIR = REPO / "bench" / "results"
LUA_DIR = REPO / "bench" / "lua"

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "bench"
DATABASE_URL = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"
REDIS_DB = 14  # never 15: the test suite flushes it
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
ISSUER = "https://auth.bench.local"
FRONTEND_URL = "https://app.bench.local"
# Every request carries it: production runs Talisman with force_https behind a TLS proxy.
FORWARDED_PROTO = {"X-Forwarded-Proto": "https"}
# wrk and the seeded sessions carry the same agent: logins come from a known device (no
# "new sign-in" notice), the common case.
USER_AGENT = "auth-bench/1.0"
SEED_PASSWORD = "bench-password-long-enough"  # noqa: S105 - the seeded users' shared password
EMAIL_DOMAIN = "bench.example.com"


def snapshot(target: Path, source: Path = REPO) -> Path:
    """Copy the application (code, migrations, gunicorn.conf.py) and measure that copy.

    gunicorn re-imports the app in every worker it starts (preload_app is off, max_requests
    recycles workers), so without a copy an edit saved mid-run would be measured half-way.
    """
    global APP_ROOT  # noqa: PLW0603 - chosen once, before anything imports the app
    target.mkdir(parents=True, exist_ok=True)
    for item in SNAPSHOT_ITEMS:
        path = source / item
        if path.is_dir():
            shutil.copytree(path, target / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.exists():
            shutil.copy2(path, target / item)
    global SNAPSHOT_SOURCE  # noqa: PLW0603
    APP_ROOT, SNAPSHOT_SOURCE = target, source
    sys.path.insert(0, str(target))
    return target


LOCK_PATH = Path(tempfile.gettempdir()) / "auth-bench.lock"


@contextlib.contextmanager
def exclusive_run(what: str) -> Iterator[None]:
    """One bench at a time on this machine: they share database `bench` and Redis DB 14 (a
    second run would drop the first one's database under it). Waits for the running one."""
    handle = LOCK_PATH.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            log(f"waiting for another bench run to finish ({handle.read().strip() or '?'})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {what}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def seed_email(index: int) -> str:
    return f"bench-user-{index}@{EMAIL_DOMAIN}"


@dataclass
class Settings:
    """One run's knobs, shared by seeding, the server and the ceilings."""

    jwt_alg: str = "RS256"
    argon2: tuple[int, int, int] = (2, 19456, 1)
    workers: int | None = None
    worker_class: str | None = None
    threads: int | None = None
    max_requests: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


def generate_private_key_pem(algorithm: str) -> bytes:
    from auth_microservice_app.utils.keys import generate_private_key, private_key_pem

    return private_key_pem(generate_private_key(algorithm))


def production_env(settings: Settings, workdir: Path, port: int) -> dict[str, str]:
    """The environment of a production deployment, pointed at the bench database and Redis."""
    key_file = workdir / f"jwt-{settings.jwt_alg}.pem"
    if not key_file.exists():
        key_file.write_bytes(generate_private_key_pem(settings.jwt_alg))
        key_file.chmod(0o600)
    t, m, p = settings.argon2
    env = {
        key: value
        for key, value in os.environ.items()
        # Nothing from the caller's shell may change what is measured.
        if not key.startswith(("GUNICORN_", "DB_", "JWT_", "ARGON2_", "RATELIMIT_", "REDIS_"))
        and not key.startswith(("EMAIL_", "CELERY_", "SMTP_", "SENDGRID_", "LOGIN_THROTTLE_"))
        and key not in {"DATABASE_URL", "SECRET_KEY", "TOTP_ENCRYPTION_KEYS", "APP_ENV"}
    }
    (workdir / "emails").mkdir(exist_ok=True)
    env.update(
        {
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "TOTP_ENCRYPTION_KEYS": "k1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "JWT_ALGORITHM": settings.jwt_alg,
            "JWT_PRIVATE_KEY_FILE": str(key_file),
            "JWT_ISSUER": ISSUER,
            # production refuses http:// and localhost public URLs and an open /metrics
            "FRONTEND_URL": FRONTEND_URL,
            "CORS_ORIGINS": FRONTEND_URL,
            "METRICS_TOKEN": secrets.token_urlsafe(32),
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "ARGON2_TIME_COST": str(t),
            "ARGON2_MEMORY_COST": str(m),
            "ARGON2_PARALLELISM": str(p),
            "LOG_LEVEL": "WARNING",
            # gunicorn's access line: the run scans it for 5xx (the app's own line is INFO), and
            # it keeps one access line per request, as every earlier result had
            "GUNICORN_ACCESS_LOG": "-",
            "RATELIMIT_ENABLED": "false",
            # Production hands emails to a broker and a Celery worker sends them. The bench's
            # broker is Redis DB 14 (flushed afterwards; no worker consumes it), so the web
            # request pays what it pays in production: one publish. Never the console backend.
            "CELERY_BROKER_URL": REDIS_URL,
            "EMAIL_BACKEND": "file",
            "EMAIL_FILE_DIR": str(workdir / "emails"),
            # as the deployment and docker-compose run it: metrics summed across workers
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"prometheus-{port}"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "PYTHONPATH": str(APP_ROOT),
        }
    )
    optional = {
        "GUNICORN_WORKERS": settings.workers,
        "GUNICORN_WORKER_CLASS": settings.worker_class,
        "GUNICORN_THREADS": settings.threads,
        "GUNICORN_MAX_REQUESTS": settings.max_requests,
    }
    env.update({name: str(value) for name, value in optional.items() if value is not None})
    env.update(settings.extra_env)
    return env


def gunicorn_settings(env: dict[str, str]) -> dict[str, Any]:
    """workers, worker_class, threads... as gunicorn.conf.py resolves them under ``env``."""
    code = (
        "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: c[k] for k in ('workers', 'worker_class', 'threads', 'timeout', "
        "'keepalive', 'max_requests', 'max_requests_jitter', 'preload_app')}))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter on our own file
        [sys.executable, "-c", code],
        cwd=APP_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    settings: dict[str, Any] = json.loads(out.stdout)
    return settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    proto: bool = True,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request to the service on 127.0.0.1 (with X-Forwarded-Proto unless ``proto`` is off):
    ``body`` is sent as JSON, ``form`` form-encoded (the ``/oauth2`` endpoints).

    Retried twice on a socket error or timeout: a worker gunicorn is recycling may drop it.
    """
    for attempt in range(3):
        try:
            return _request_once(port, method, path, body, headers, proto, timeout, form=form)
        except OSError:
            if attempt == 2:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def _request_once(
    port: int,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str] | None,
    proto: bool,
    timeout: float,
    form: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    all_headers = {
        **(FORWARDED_PROTO if proto else {}),
        "User-Agent": USER_AGENT,
        **(headers or {}),
    }
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    elif form is not None:
        payload = urllib.parse.urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


class Server:
    """gunicorn with gunicorn.conf.py, started and stopped by us (by pid, never by name)."""

    def __init__(self, app: str, env: dict[str, str], log_path: Path, pythonpath: str = "") -> None:
        self.app = app
        self.env = env
        self.port = int(env["PORT"])
        self.log_path = log_path
        self.pythonpath = pythonpath
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str = "/health/live", timeout: float = 60.0) -> None:
        cmd = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"]
        if self.pythonpath:
            cmd += ["--pythonpath", self.pythonpath]
        cmd.append(self.app)
        handle = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - gunicorn from our venv
            cmd, cwd=APP_ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT
        )
        handle.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}): {self.log_path}")
            try:
                if _request_once(self.port, "GET", ready_path, None, None, True, 2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"gunicorn did not answer {ready_path} in {timeout}s")
        self.wait_for_workers(timeout=deadline - time.monotonic())

    def wait_for_workers(self, timeout: float) -> None:
        """Every worker forked and the app imported in each (a request alone proves only one)."""
        expected = int(gunicorn_settings(self.env)["workers"])
        deadline = time.monotonic() + max(timeout, 5)
        while time.monotonic() < deadline and len(self.worker_pids()) < expected:
            time.sleep(0.2)
        # Each worker imports the app after it forks; give the slowest a moment to finish.
        for _ in range(4 * expected):
            try:
                _request_once(self.port, "GET", "/health/live", None, None, True, 5)
            except OSError:
                time.sleep(0.2)
        time.sleep(1.0)

    @property
    def pid(self) -> int:
        assert self.process is not None  # noqa: S101 - started before use
        return self.process.pid

    def worker_pids(self) -> list[int]:
        return children_of(self.pid) if self.process else []

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB, or None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _command_output(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
    except OSError:
        return "unavailable"
    return (out.stdout or out.stderr).strip()


def machine_info(gunicorn: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """What a reader needs to compare two result files."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    mem = re.search(r"^MemTotal:\s*(\d+)", meminfo, re.MULTILINE)
    import psycopg2
    import redis

    with psycopg2.connect(ADMIN_DSN) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        row = cur.fetchone()
        pg_version = str(row[0]) if row else "?"
        cur.execute("SHOW synchronous_commit")
        row = cur.fetchone()
        sync_commit = str(row[0]) if row else "?"
    info: dict[str, Any] = redis.Redis.from_url(REDIS_URL).info("server")  # type: ignore[assignment]
    redis_version = info.get("redis_version", "?")
    wrk = shutil.which("wrk")
    return {
        "nproc": os.cpu_count(),
        "nproc_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "postgresql_synchronous_commit": sync_commit,
        "redis": redis_version,
        "gunicorn_version": _command_output([str(BIN / "gunicorn"), "--version"]),
        "wrk": _command_output([wrk, "--version"]).splitlines()[0] if wrk else "missing",
        "gunicorn": gunicorn,
        "jwt_alg": env["JWT_ALGORITHM"],
        "argon2": {
            "time_cost": int(env["ARGON2_TIME_COST"]),
            "memory_cost_kib": int(env["ARGON2_MEMORY_COST"]),
            "parallelism": int(env["ARGON2_PARALLELISM"]),
        },
        "git": git_state(),
    }


def git_state() -> dict[str, Any]:
    """The commit measured and whether the application was being edited (others work here too)."""
    if SNAPSHOT_SOURCE != REPO:
        return {"commit": "n/a", "app_files_modified": [], "measured_copy": str(SNAPSHOT_SOURCE)}
    head = _command_output(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    dirty = _command_output(
        [
            "git",
            "-C",
            str(REPO),
            "status",
            "--porcelain",
            "--",
            "auth_microservice_app",
            "migrations",
        ]
    )
    return {
        "commit": head,
        "app_files_modified": [line[3:] for line in dirty.splitlines() if line],
        "measured_copy": str(APP_ROOT),
    }


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds of a process (and of its reaped children when asked), 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICK


def _cpu_times() -> dict[str, float]:
    """Machine-wide CPU seconds from /proc/stat: process time, interrupts, and steal."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return {
        "process": (v[0] + v[1] + v[2]) / _TICK,  # user, nice, system
        "irq": (v[5] + v[6]) / _TICK,  # irq, softirq: loopback TCP lands here
        "steal": (v[7] if len(v) > 7 else 0) / _TICK,  # the hypervisor gave the vCPU away
        "idle": (v[3] + v[4]) / _TICK,
    }


def wait_for_quiet(max_wait: float, busy_cores: float = 0.3) -> float:
    """Wait until nothing else runs (under ``busy_cores`` for two 2 s windows); seconds waited.

    The machine may be shared (colleagues' test suites): a measurement taken beside one says
    nothing. Gives up after ``max_wait`` seconds, and the CPU account of the run then says so.
    """
    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < max_wait:
        before = _cpu_times()
        time.sleep(2)
        after = _cpu_times()
        busy = (after["process"] - before["process"]) / 2
        quiet = quiet + 1 if busy < busy_cores else 0
        if quiet >= 2:
            break
    waited = time.monotonic() - started
    if waited > 10:
        log(f"  waited {waited:.0f}s for the machine to be quiet")
    return waited


def _named_pids(names: tuple[str, ...]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm.startswith(names):
                pids.append(int(entry.name))
    return pids


def _bench_postgres_pids() -> list[int]:
    """The postmaster, its helpers and the backends of database bench (not the test suite's)."""
    pids = []
    for pid in _named_pids(("postgres", "postmaster")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f" {BENCH_DB} " in cmdline or "(" not in cmdline:  # a backend names its client
            pids.append(pid)
    return pids


class CpuAccount:
    """Where the machine's CPU went during a measurement: the service, wrk, PostgreSQL, Redis,
    and anything else (other people's jobs on a shared machine make a run unrepresentative)."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid

    def _sample(self) -> dict[str, float]:
        import resource

        machine = _cpu_times()
        ours = {"process": machine["process"], "irq": machine["irq"], "steal": machine["steal"]}
        if self.server_pid:
            ours["service"] = _proc_cpu(self.server_pid, children=True) + sum(
                _proc_cpu(pid) for pid in children_of(self.server_pid)
            )
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk and pools, once reaped
        itself = resource.getrusage(resource.RUSAGE_SELF)
        ours["bench"] = children.ru_utime + children.ru_stime + itself.ru_utime + itself.ru_stime
        ours["postgres"] = sum(_proc_cpu(pid, children=True) for pid in _bench_postgres_pids())
        ours["redis"] = sum(_proc_cpu(pid) for pid in _named_pids(("redis-server",)))
        return ours

    def __enter__(self) -> CpuAccount:
        self.start = self._sample()
        self.started = time.monotonic()
        return self

    def __exit__(self, *_exc: object) -> None:
        end = self._sample()
        self.wall = time.monotonic() - self.started
        self.used = {k: round(end.get(k, 0.0) - v, 1) for k, v in self.start.items()}
        known = sum(self.used.get(k, 0.0) for k in ("service", "bench", "postgres", "redis"))
        self.used["other"] = round(max(0.0, self.used["process"] - known), 1)

    def summary(self) -> dict[str, float]:
        cores = len(os.sched_getaffinity(0))
        return {
            **self.used,
            "wall_s": round(self.wall, 1),
            "capacity_s": round(self.wall * cores, 1),
        }
