"""Gunicorn settings for the auth service.

Every value can be overridden through the environment, so the same file serves the
container image, docker-compose and Kubernetes. Run it with:

    gunicorn -c gunicorn.conf.py auth_microservice_app.wsgi:app

Never expose it to clients directly: it must sit behind a buffering reverse proxy (see
"Behind the proxy" below). See docs/deployment.md ("Tuning gunicorn") for how to pick the
numbers.

`make run` serves with this file too, in development (APP_ENV unset or development): then it
reads `.env` as the app does, listens on 127.0.0.1:5000 like the app's own defaults, starts
at most 4 workers, and keeps the multiprocess metrics in instance/prometheus-multiproc (see
"Development" below).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger, SafeAtoms


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        # Fail at start-up with the variable's name rather than with a traceback
        # from deep inside gunicorn's validators.
        raise SystemExit(f"gunicorn.conf.py: {name} must be an integer, got {raw!r}") from exc


def _available_cpus() -> int:
    """CPUs this process may really use.

    os.cpu_count() reports every core of the node, so a pod limited to 1 CPU on a
    32-core node would start 65 workers and be throttled and OOM-killed. Honour the
    CPU affinity mask and the cgroup v2 quota (cpu.max) that Kubernetes and Docker set.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota visible: the affinity mask is the best we know
    return max(1, cpus)


# --- Development -----------------------------------------------------------------------
# `make run` (APP_ENV unset or development) serves the app the way production does, on the
# development defaults: SQLite in the instance folder, no Redis, a generated key. The image,
# compose and Kubernetes set APP_ENV and every value below themselves.
DEVELOPMENT = os.environ.get("APP_ENV", "development").strip().lower() == "development"
INSTANCE_DIR = Path(__file__).absolute().parent / "instance"
if DEVELOPMENT:
    from dotenv import load_dotenv

    # As create_app() does: .env fills what the environment leaves unset. Read here, before
    # any setting below, so that HOST and PORT from .env move the server, not only the app.
    load_dotenv(Path(__file__).absolute().with_name(".env"), override=False)
    # Several workers count requests in several processes; /metrics must add them up
    # (see "Prometheus multiprocess mode" below). Set before the workers import the app.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # unset, or empty as in .env.example
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(INSTANCE_DIR / "prometheus-multiproc")

# --- Socket ---------------------------------------------------------------------------
# HOST/PORT are the same variables the app and the Dockerfile use. 0.0.0.0:8000 is the
# container default (the image sets it too); development listens where the app's own
# defaults say, 127.0.0.1:5000. A bare IPv6 literal gets the brackets gunicorn needs.
# A container must listen on all interfaces (S104).
_default_bind = ("127.0.0.1", 5000) if DEVELOPMENT else ("0.0.0.0", 8000)  # noqa: S104
_host = os.environ.get("HOST", _default_bind[0])
_port = _env_int("PORT", _default_bind[1])
bind = [f"[{_host}]:{_port}" if ":" in _host and not _host.startswith("[") else f"{_host}:{_port}"]

# --- Behind the proxy -----------------------------------------------------------------------
# gunicorn must only ever be reached through a buffering reverse proxy: nginx in
# docker-compose.yml (infrastructure/nginx/nginx.conf), the ingress controller in Kubernetes
# (infrastructure/kubernetes/ingress.yaml; the Service stays ClusterIP). A gthread worker
# gives each connection a thread until the request line, headers and body have arrived, and
# has no deadline for that: a few dozen clients sending headers a line a second, or
# connecting and sending nothing, hold every thread (issue 15, F2: 24 such sockets made 67%
# of other requests time out; `timeout` below does not help). The proxy reads each request in
# full, within its client_header_timeout/client_body_timeout, before passing it on, and takes
# each response at once; tests/integration/test_proxy.py shows the difference.
#
# Which forwarding headers to believe is decided in one place: the app's TRUSTED_PROXIES
# (werkzeug's ProxyFix takes X-Forwarded-For/-Proto/-Host from that many proxies; 1 in
# compose and the ConfigMap). gunicorn's own check by peer address is switched off, so the
# environment variable FORWARDED_ALLOW_IPS has no effect: its default (127.0.0.1) would let a
# local client set the scheme where the app trusts no proxy, and the proxy's address (a
# compose network, ingress controller pods) is not known in advance anyway.
forwarded_allow_ips = ""

wsgi_app = "auth_microservice_app.wsgi:app"

# --- Workers --------------------------------------------------------------------------
# gthread: password hashing (argon2) is CPU bound and releases the GIL, while database,
# Redis and SMTP calls wait on I/O; a few threads per process cover the waits without
# the monkey-patching that gevent would need for psycopg2.
# Development caps the default at 4: enough to behave like production (several processes
# on one SQLite file and one generated key), without a worker per core of a large laptop.
_cpu_workers = 2 * _available_cpus() + 1
workers = _env_int("GUNICORN_WORKERS", min(_cpu_workers, 4) if DEVELOPMENT else _cpu_workers)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = _env_int("GUNICORN_THREADS", 4)

# The arbiter kills and replaces a worker *process* whose main loop has not checked in for
# this many seconds: one hung at start-up, deadlocked, or spinning with the GIL held. It is
# not a request deadline under gthread: the main loop keeps checking in while its threads
# wait, so a thread blocked on a client that sends its headers or body slowly, or on a call
# that hangs, stays blocked however long that takes (with the sync worker class, where the
# request runs on the main loop, it would also end the request). Requests are bounded instead
# by the proxy, which hands over only complete requests and gives up on an answer after its
# proxy_read_timeout (the thread still runs the request to its end), and by the app's
# timeouts on what it calls: DB_CONNECT_TIMEOUT, DB_POOL_TIMEOUT, REDIS_SOCKET_TIMEOUT,
# EMAIL_TIMEOUT, PASSWORD_BREACH_CHECK_TIMEOUT.
timeout = _env_int("GUNICORN_TIMEOUT", 30)
# SIGTERM gives in-flight requests this long to finish. Kubernetes waits
# terminationGracePeriodSeconds (45 s in deployment.yaml) which must stay above this.
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Keep idle client connections open briefly. Behind a proxy that reuses connections, set it
# above the proxy's idle timeout for them (60 s for the compose nginx's upstream keepalive and
# for ingress-nginx; compose and the ConfigMap set 75), so gunicorn never closes a connection
# the proxy is about to reuse. While idle they wait in the worker's poller, not in a thread.
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)

# Recycle each worker after this many requests to cap the effect of slow leaks; the
# jitter staggers the restarts so the workers never all recycle at the same moment.
# Measured (bench/results): a worker start costs seconds of CPU (imports, the app factory),
# so recycling every 1,000 requests cost about 2 ms per request and p95 stalls of seconds.
# At 50,000 the start-up is amortised to well under 0.1 ms; the soak shows no leak to cap.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 50000)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 5000)

# Load the app in each worker, not in the master: database pools, Redis clients and the
# prometheus multiprocess files must not be created before fork and shared by workers.
preload_app = False

# The worker heartbeat file is touched continuously; /dev/shm is memory-backed (a disk
# can stall it) and stays writable under readOnlyRootFilesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

# Gunicorn >= 25 opens a control socket under $HOME by default. Containers are managed by
# signals; the socket would only fail (read-only root) or add an unneeded control path.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not _control_socket
if _control_socket:
    control_socket = _control_socket

proc_name = "auth-service"

# --- Logging ------------------------------------------------------------------------------
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
errorlog = "-"  # stderr
# One access line per request: the app's own (logger auth_microservice_app.access, from
# middleware/request_context.py: method, path, status, duration, client address, user agent
# and the request id), with the rest of its JSON logs. gunicorn's access log would write a
# second line for every request, so it is off unless GUNICORN_ACCESS_LOG names a file ("-"
# for stdout), e.g. to see requests gunicorn answered without the app.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None

# When on, one JSON object per line. The query string, the raw request line and the Referer
# are left out on purpose: e-mail verification links and OAuth callbacks carry tokens and
# codes there, and no token may ever reach a log line. The request id is the one the app
# returns in X-Request-ID, so access lines join with the app's own JSON logs.
access_log_format = (
    "{"
    '"time":"%(t)s",'
    '"level":"INFO",'
    '"logger":"gunicorn.access",'
    '"remote_addr":"%(h)s",'
    '"forwarded_for":"%({x-forwarded-for}i)s",'
    '"method":"%(m)s",'
    '"path":"%(U)s",'
    '"protocol":"%(H)s",'
    '"status":%(s)s,'
    '"response_bytes":"%(b)s",'
    '"duration_ms":%(M)s,'
    '"user_agent":"%(a)s",'
    '"request_id":"%({x-request-id}o)s",'
    '"pid":%(p)s'
    "}"
)


class JsonSafeAtoms(SafeAtoms):
    """Escapes every string atom for a JSON string literal.

    Gunicorn's own SafeAtoms only escapes double quotes, so a backslash or a control
    character in a User-Agent would break the JSON line.
    """

    def __init__(self, atoms: dict[str, Any]) -> None:
        dict.__init__(self)
        for key, value in atoms.items():
            self[key] = json.dumps(value)[1:-1] if isinstance(value, str) else value


class JsonLogger(Logger):
    """Gunicorn logger whose access and error lines are both JSON."""

    atoms_wrapper_class = JsonSafeAtoms

    def now(self) -> str:
        # ISO-8601 UTC like the rest of the service, instead of the Apache log format.
        return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["p"] = os.getpid()  # a number, not gunicorn's "<pid>"
        return atoms

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from pythonjsonlogger.json import JsonFormatter

        formatter = JsonFormatter(
            "%(levelname)s %(name)s %(process)d %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
            timestamp="time",  # ISO-8601 UTC, under the key the app's own JSON logs use
        )
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)


logger_class = JsonLogger


# --- Prometheus multiprocess mode ---------------------------------------------------------
# With several worker processes each keeps its own counters; prometheus_client merges them
# from files in PROMETHEUS_MULTIPROC_DIR. The directory must exist before the first worker
# imports the app, and files left by a previous run would be counted again.


def on_starting(server: Any) -> None:
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not metrics_dir:
        return
    path = Path(metrics_dir)
    path.mkdir(parents=True, exist_ok=True)
    # Empty it rather than delete and recreate it: in Kubernetes it is an emptyDir mount
    # point, which cannot be removed.
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    server.log.info("prometheus multiprocess directory ready: %s", path)


def child_exit(server: Any, worker: Any) -> None:
    # Drop the live-gauge files of a dead worker so its values stop being reported.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

    GunicornPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
