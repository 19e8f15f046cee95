"""gunicorn behind the compose file's nginx: slow and idle clients no longer starve it.

gthread gives a connection a worker thread until its request line, headers and body have
arrived, with no deadline (issue 15, F2); gunicorn's ``timeout`` does not help, the worker's
main loop keeps reporting alive. ``infrastructure/nginx/nginx.conf`` is the file
docker-compose.yml mounts into its proxy; these tests run Debian's nginx unprivileged on that
very file, with only its listen and upstream addresses moved to loopback ports, in front of a
real gunicorn started with gunicorn.conf.py the way tests/running_server.py starts it.

nginx is required, not optional: ``scripts/install-test-tools.sh`` (``make test``) installs it,
and without it these tests fail saying so.
"""

from __future__ import annotations

import json
import re
import select
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests import running_server
from tests.conftest import PASSWORD
from tests.nginx_conf import NGINX_CONF, nginx_directive
from tests.running_server import (
    Answer,
    Server,
    base_environment,
    free_port,
    start,
    start_service,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NGINX_MISSING = (
    "nginx is not installed: run `bash scripts/install-test-tools.sh` as root (it runs "
    "`apt-get install -y nginx`). These tests need the real proxy and do not skip without it."
)
# One worker with its 4 threads (the production size is 3 such workers). One, so that the
# contrast below does not depend on which worker the kernel hands each connection to: with
# several, the slow clients starve the workers they land on (issue 15: 67% of requests).
GUNICORN_WORKERS = 1
GUNICORN_THREADS = 4
# Twelve times the threads; issue 15 measured 24 and 48 on the production size.
SLOW_HEADER_CLIENTS = 48
IDLE_CLIENTS = 48
SLOW_PATH = "/slow-client"  # what the slow clients ask for: never reaches the app via nginx
# Ordinary traffic meanwhile, a few requests at a time (well below the per-address limit).
NORMAL_HEALTH_REQUESTS = 24
NORMAL_ME_REQUESTS = 8
NORMAL_CONCURRENCY = 8
# Generous: an answer takes milliseconds; only a starved server needs longer.
ANSWER_DEADLINE_S = 5.0
# How long past client_header_timeout nginx may take to close a slow socket before the test
# calls it a hang (nginx checks its timers on its event loop; the watcher polls every 0.1 s).
CLOSE_MARGIN_S = 5.0
CLIENT = "127.0.0.1"
OTHER_CLIENT = "127.0.0.2"  # a second client address: all of 127.0.0.0/8 is loopback


# --- the proxy configuration ---------------------------------------------------------------


def nginx_executable() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        pytest.fail(NGINX_MISSING)
    return found


def nginx_seconds(name: str) -> float:
    value = nginx_directive(name)
    assert re.fullmatch(r"\d+s", value), f"{name} {value}: write it in whole seconds (10s)"
    return float(value[:-1])


def render_for_loopback(text: str, *, listen_port: int, upstream_port: int) -> str:
    """The compose configuration with its two network addresses moved to loopback ports."""
    for pattern, replacement in (
        (r"^(\s*)listen 8080;$", rf"\g<1>listen {CLIENT}:{listen_port};"),
        (r"^(\s*)server api:8000;$", rf"\g<1>server 127.0.0.1:{upstream_port};"),
    ):
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count == 1, f"{NGINX_CONF} has no single line {pattern!r}: update this renderer"
    return text


# --- plain HTTP clients ----------------------------------------------------------------------


def call(
    port: int,
    method: str,
    path: str,
    *,
    source: str = CLIENT,
    timeout: float = ANSWER_DEADLINE_S,
    **kwargs: Any,
) -> Answer:
    """One request on its own connection from ``source``; raises TimeoutError when no answer
    comes in time."""
    return running_server.call(port, method, path, source=source, timeout=timeout, **kwargs)


def ordinary_traffic(
    port: int, *, health: int, access_token: str | None = None
) -> list[Answer | BaseException]:
    """``health`` GET /health/live, and with a token GET /api/v1/auth/me, a few at a time."""
    jobs: list[tuple[str, dict[str, str]]] = [("/health/live", {})] * health
    if access_token:
        me = ("/api/v1/auth/me", {"Authorization": f"Bearer {access_token}"})
        jobs += [me] * NORMAL_ME_REQUESTS

    def one(job: tuple[str, dict[str, str]]) -> Answer | BaseException:
        try:
            return call(port, "GET", job[0], headers=job[1])
        except OSError as exc:  # TimeoutError included: reported by the assertions
            return exc

    with ThreadPoolExecutor(max_workers=NORMAL_CONCURRENCY) as pool:
        return list(pool.map(one, jobs))


def describe(results: list[Answer | BaseException]) -> str:
    answered = [r for r in results if isinstance(r, Answer)]
    failed = [r for r in results if not isinstance(r, Answer)]
    slowest = max((r.seconds for r in answered), default=0.0)
    statuses = sorted({r.status for r in answered})
    return (
        f"{len(answered)}/{len(results)} answered (statuses {statuses}, slowest "
        f"{slowest:.3f}s), {len(failed)} failed: {[repr(e) for e in failed[:3]]}"
    )


# --- slow clients ----------------------------------------------------------------------------


@dataclass
class SlowClients:
    """Connections that hold a server the gthread way, watched until the server closes them.

    ``trickling`` sockets send a request line, then one more header line every second and
    never the blank line that ends the headers; ``idle`` sockets connect and send nothing.
    """

    port: int
    trickling: int
    idle: int
    sockets: list[socket.socket] = field(default_factory=list)
    closed_after: dict[int, float] = field(default_factory=dict)  # index -> seconds open
    rounds: int = 0
    opened_at: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.opened_at = time.monotonic()
        for index in range(self.trickling + self.idle):
            client = socket.create_connection((CLIENT, self.port), timeout=ANSWER_DEADLINE_S)
            self.sockets.append(client)
            if index < self.trickling:
                client.sendall(f"GET {SLOW_PATH} HTTP/1.1\r\nHost: {CLIENT}\r\n".encode())
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_line = time.monotonic() + 1.0
        while not self._stop.wait(0.1):
            self._notice_closed()
            if time.monotonic() >= next_line:
                self._trickle()
                next_line += 1.0

    def _notice_closed(self) -> None:
        open_sockets = [s for i, s in enumerate(self.sockets) if i not in self.closed_after]
        if not open_sockets:
            return
        readable, _, _ = select.select(open_sockets, [], [], 0)
        for client in readable:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:  # the server closed it (FIN or reset)
                self._closed(self.sockets.index(client))

    def _trickle(self) -> None:
        for index in range(self.trickling):
            if index in self.closed_after:
                continue
            try:
                self.sockets[index].sendall(f"X-Slow-{self.rounds}: {index}\r\n".encode())
            except OSError:
                self._closed(index)
        with self._lock:
            self.rounds += 1

    def _closed(self, index: int) -> None:
        with self._lock:
            self.closed_after.setdefault(index, time.monotonic() - self.opened_at)

    @property
    def still_open(self) -> int:
        with self._lock:
            return len(self.sockets) - len(self.closed_after)

    def wait_for_rounds(self, rounds: int) -> None:
        """Until every trickling socket has sent ``rounds`` more header lines."""
        deadline = time.monotonic() + rounds + ANSWER_DEADLINE_S
        while self.rounds < rounds and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.rounds >= rounds, "the slow clients stopped sending"

    def wait_until_all_closed(self, deadline: float) -> None:
        while self.still_open and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for client in self.sockets:
            client.close()


@pytest.fixture
def slow_clients() -> Iterator[list[SlowClients]]:
    """Every SlowClients a test starts; their sockets and thread end with the test."""
    started: list[SlowClients] = []
    yield started
    for clients in started:
        clients.close()


def attack(registry: list[SlowClients], port: int) -> SlowClients:
    clients = SlowClients(port, trickling=SLOW_HEADER_CLIENTS, idle=IDLE_CLIENTS)
    registry.append(clients)
    clients.start()
    # Two header lines from every trickling socket: each is in the middle of its headers.
    clients.wait_for_rounds(2)
    return clients


# --- servers -----------------------------------------------------------------------------------


def start_gunicorn(tmp_path: Path, signing_key_pem: str, **settings: str) -> Server:
    return start_service(
        tmp_path,
        signing_key_pem,
        name="gunicorn",
        GUNICORN_WORKERS=str(GUNICORN_WORKERS),
        GUNICORN_THREADS=str(GUNICORN_THREADS),
        # as in docker-compose.yml: above nginx's upstream keepalive_timeout
        GUNICORN_KEEPALIVE="75",
        GUNICORN_GRACEFUL_TIMEOUT="5",
        **settings,
    )


@pytest.fixture
def gunicorn(tmp_path: Path, signing_key_pem: str) -> Iterator[Server]:
    """gunicorn with the app trusting one proxy, as compose and the ConfigMap run it."""
    server = start_gunicorn(tmp_path, signing_key_pem, TRUSTED_PROXIES="1")
    try:
        yield server
    finally:
        server.stop()


@dataclass
class NginxInFront:
    """Starts nginx on the compose configuration in front of a server; stops what it started.

    Started from the test body, not a fixture, so that a missing nginx fails the test itself.
    """

    tmp_path: Path
    started: list[tuple[Server, Path]] = field(default_factory=list)

    def __call__(self, upstream: Server) -> Server:
        executable = nginx_executable()
        # nginx's prefix (pid file, temporary directories). Not under tmp_path: run as root,
        # nginx's workers drop to an unprivileged user, who must be able to reach it.
        prefix = Path(tempfile.mkdtemp(prefix="auth-nginx-"))
        prefix.chmod(0o755)
        port = free_port()
        config = prefix / "nginx.conf"
        config.write_text(
            render_for_loopback(
                NGINX_CONF.read_text(encoding="utf-8"),
                listen_port=port,
                upstream_port=upstream.port,
            )
        )
        try:
            proxy = start(
                [executable, "-p", f"{prefix}/", "-c", str(config), "-e", "stderr"],
                env=base_environment(),
                port=port,
                log_dir=self.tmp_path,
                name="nginx",
            )
        except BaseException:
            shutil.rmtree(prefix, ignore_errors=True)
            raise
        self.started.append((proxy, prefix))
        return proxy

    def stop_all(self) -> None:
        for proxy, prefix in self.started:
            proxy.stop()
            shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture
def nginx_in_front(tmp_path: Path) -> Iterator[NginxInFront]:
    starter = NginxInFront(tmp_path)
    try:
        yield starter
    finally:
        starter.stop_all()


def sign_in(port: int, email: str = "proxied@example.com") -> str:
    """Register and sign in through ``port``; the access token."""
    credentials = {"email": email, "password": PASSWORD}
    registered = call(port, "POST", "/api/v1/auth/register", body=credentials)
    assert registered.status == 201, registered.body
    signed_in = call(port, "POST", "/api/v1/auth/login", body=credentials)
    assert signed_in.status == 200, signed_in.body
    return str(json.loads(signed_in.body)["access_token"])


def log_lines(path: Path) -> list[dict[str, object]]:
    """The JSON lines of a log a server may still be writing (a last partial line is left)."""
    complete = path.read_text(errors="replace").rpartition("\n")[0]
    return [json.loads(line) for line in complete.splitlines() if line.startswith("{")]


def access_lines(server: Server) -> list[dict[str, object]]:
    """The app's access lines: the one line per request that reached it (gunicorn.conf.py
    leaves gunicorn's own access log off)."""
    return [
        line
        for line in log_lines(server.stdout)
        if line.get("logger") == "auth_microservice_app.access"
    ]


def wait_for_status(port: int, status: int, *, source: str) -> Answer:
    """Ask until ``status`` comes (nginx's workers take connections on their own schedule)."""
    deadline = time.monotonic() + ANSWER_DEADLINE_S
    answer = call(port, "GET", "/health/live", source=source)
    while answer.status != status and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = call(port, "GET", "/health/live", source=source)
    return answer


# --- tests -------------------------------------------------------------------------------------


def test_slow_and_idle_clients_through_nginx_leave_other_clients_served(
    app: Flask, gunicorn: Server, nginx_in_front: NginxInFront, slow_clients: list[SlowClients]
) -> None:
    """48 sockets trickling headers and 48 idle ones cost nginx sockets, not gunicorn threads.

    Meanwhile other clients' health checks and authenticated /me calls through the same nginx
    (and from the same address) all answer within the deadline, while every one of those
    sockets is still open. nginx then closes them all once client_header_timeout has passed,
    although the trickling ones kept sending, and gunicorn never sees one of their requests.
    """
    nginx = nginx_in_front(gunicorn)
    access_token = sign_in(nginx.port)
    clients = attack(slow_clients, nginx.port)
    attackers = SLOW_HEADER_CLIENTS + IDLE_CLIENTS
    assert clients.still_open == attackers, nginx.logs()

    results = ordinary_traffic(nginx.port, health=NORMAL_HEALTH_REQUESTS, access_token=access_token)

    summary = describe(results)
    print(f"through nginx, with {attackers} slow sockets open: {summary}")
    assert all(isinstance(r, Answer) and r.status == 200 for r in results), (
        f"{summary}\n{nginx.logs()}\n{gunicorn.logs()}"
    )
    # The attack was on all along: every slow socket outlived the ordinary traffic.
    assert clients.still_open == attackers, summary

    header_timeout = nginx_seconds("client_header_timeout")
    clients.wait_until_all_closed(clients.opened_at + header_timeout + CLOSE_MARGIN_S)
    assert clients.still_open == 0, (
        f"{clients.still_open} slow sockets still open {header_timeout + CLOSE_MARGIN_S}s "
        f"after connecting (client_header_timeout {header_timeout}s)\n{nginx.logs()}"
    )
    closed = sorted(clients.closed_after.values())
    print(f"nginx closed them {closed[0]:.1f}s to {closed[-1]:.1f}s after they connected")
    # nginx ended the trickling requests with 408 (the idle sockets never made a request).
    timed_out = [line for line in log_lines(nginx.stdout) if line.get("status") == 408]
    assert len(timed_out) == SLOW_HEADER_CLIENTS, nginx.logs()

    assert call(nginx.port, "GET", "/health/live").status == 200
    paths = [line.get("path") for line in access_lines(gunicorn)]
    assert SLOW_PATH not in paths, "nginx forwarded an unfinished request"
    assert paths.count("/api/v1/auth/me") == NORMAL_ME_REQUESTS


def test_gunicorn_alone_is_starved_by_the_same_slow_clients(
    tmp_path: Path, signing_key_pem: str, slow_clients: list[SlowClients]
) -> None:
    """The contrast: the same sockets sent to the same gunicorn directly hold all its threads.

    Every health check then times out, and gunicorn's ``timeout`` (2 s here) does not rescue
    them: the worker's main loop keeps reporting alive while its threads wait, so it is never
    killed.
    """
    server = start_gunicorn(tmp_path, signing_key_pem, GUNICORN_TIMEOUT="2")
    try:
        attack(slow_clients, server.port)
        results = ordinary_traffic(server.port, health=NORMAL_CONCURRENCY)
        summary = describe(results)
        print(f"gunicorn directly, same slow sockets: {summary}")
        assert all(isinstance(r, TimeoutError) for r in results), summary
        assert "WORKER TIMEOUT" not in server.stderr.read_text(errors="replace")
    finally:
        server.stop()


def test_nginx_refuses_one_address_past_its_connection_limit_with_429(
    gunicorn: Server, nginx_in_front: NginxInFront
) -> None:
    """Requests whose bodies never come count against limit_conn; other addresses do not.

    Their headers are complete, so nginx has accepted each request and waits for its body
    (which it reads in full before gunicorn hears of the request). One more request from that
    address is refused by nginx with 429; a request from another address is served.
    """
    nginx = nginx_in_front(gunicorn)
    limit = int(nginx_directive("limit_conn per_client_address"))
    held: list[socket.socket] = []
    try:
        held.extend(hold_a_request(nginx.port) for _ in range(limit))
        deadline = time.monotonic() + ANSWER_DEADLINE_S
        answer = call(nginx.port, "GET", "/health/live", source=CLIENT)
        while answer.status != 429 and time.monotonic() < deadline:
            # A request nginx has just answered can still count for a moment, so one of the
            # held requests may have been refused in its place: hold another instead.
            for refused in select.select(held, [], [], 0)[0]:
                held.remove(refused)
                refused.close()
                held.append(hold_a_request(nginx.port))
            time.sleep(0.05)
            answer = call(nginx.port, "GET", "/health/live", source=CLIENT)
        assert answer.status == 429, nginx.logs()
        assert call(nginx.port, "GET", "/health/live", source=OTHER_CLIENT).status == 200
    finally:
        for client in held:
            client.close()
    assert wait_for_status(nginx.port, 200, source=CLIENT).status == 200, "still refused"


def hold_a_request(port: int) -> socket.socket:
    """A login request whose headers are complete and whose body never comes."""
    client = socket.create_connection((CLIENT, port), timeout=ANSWER_DEADLINE_S)
    client.sendall(
        (
            "POST /api/v1/auth/login HTTP/1.1\r\n"
            f"Host: {CLIENT}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n{"
        ).encode()
    )
    return client


def test_app_sees_the_address_nginx_saw_not_a_forwarded_for_the_client_wrote(
    gunicorn: Server, nginx_in_front: NginxInFront
) -> None:
    """nginx replaces X-Forwarded-For; the app (TRUSTED_PROXIES=1, ProxyFix) takes it."""
    nginx = nginx_in_front(gunicorn)
    answer = call(
        nginx.port,
        "GET",
        "/health/live",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Request-ID": "proxy-forwarded-for"},
        source=OTHER_CLIENT,
    )
    assert answer.status == 200
    deadline = time.monotonic() + ANSWER_DEADLINE_S
    seen: list[dict[str, object]] = []
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = [
            line
            for line in log_lines(gunicorn.stdout)
            if line.get("request_id") == "proxy-forwarded-for"
        ]
    time.sleep(0.3)  # a second line for the request would be there by now
    seen = [
        line
        for line in log_lines(gunicorn.stdout)
        if line.get("request_id") == "proxy-forwarded-for"
    ]
    (line,) = seen  # one access line per request: the app's
    assert line["logger"] == "auth_microservice_app.access", seen
    assert line["remote_addr"] == OTHER_CLIENT
