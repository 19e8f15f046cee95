"""The endpoints under load, each with its preparation (token pools, service clients) and a
smoke check."""

from __future__ import annotations

import base64
import json
import math
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import seed
from .common import (
    BIN,
    SEED_PASSWORD,
    CpuAccount,
    Server,
    http_request,
    seed_email,
    wait_for_quiet,
)
from .load import CONNECTIONS, THREADS, LoadResult, run_wrk, write_pool

ENDPOINTS = (
    "jwks",
    "me",
    "refresh",
    "logout",
    "login",
    "register",
    "client_credentials",
    "introspect",
)
ME_POOL = 5000  # distinct access tokens for /me (reusable: /me spends nothing)
POOL_MARGIN = 2.0  # the measured pool is sized at twice the warm-up's rate
MIN_POOL_RATE = 200.0


@dataclass
class Context:
    """What a scenario needs: the running service, its environment, the seeded data."""

    server: Server
    env: dict[str, str]
    workdir: Path
    users: int
    duration: float
    warmup: float
    bare_rps: float
    run_id: str
    connections: int = CONNECTIONS
    threads: int = THREADS
    profile_dir: Path | None = None
    quiet_timeout: float = 300.0
    #: service clients made for the /oauth2 scenarios: name -> (client_id, client_secret)
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)


def _wrk(ctx: Context, name: str, seconds: float, scenario: str, **kwargs: Any) -> LoadResult:
    return run_wrk(
        name,
        ctx.server.port,
        seconds,
        scenario,
        users=ctx.users,
        run_id=ctx.run_id,
        connections=ctx.connections,
        threads=ctx.threads,
        **kwargs,
    )


def _measured(ctx: Context, name: str, scenario: str, **kwargs: Any) -> LoadResult:
    """The measured run, with py-spy attached to every worker when profiling was asked for."""
    wait_for_quiet(ctx.quiet_timeout)
    spy = None
    if ctx.profile_dir is not None:
        ctx.profile_dir.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen(  # noqa: S603 - py-spy from our venv, on our own gunicorn
            [
                py_spy(),
                "record",
                "--pid",
                str(ctx.server.pid),
                "--subprocesses",
                "--rate",
                "97",
                "--format",
                "raw",
                "--duration",
                str(max(1, round(ctx.duration))),
                "--output",
                str(ctx.profile_dir / f"{name}.txt"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        with CpuAccount(ctx.server.pid) as cpu:
            result = _wrk(ctx, name, ctx.duration, scenario, **kwargs)
    finally:
        if spy is not None:
            spy.wait(timeout=60)
    result.account(cpu.summary())
    if spy is not None:
        result.notes.append("profiled with py-spy: throughput is perturbed")
    return result


def py_spy() -> str:
    """py-spy from the venv or PATH (`pip install py-spy`; not a project dependency)."""
    found = BIN / "py-spy"
    if found.exists():
        return str(found)
    on_path = shutil.which("py-spy")
    if on_path is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return on_path


def _smoke(ok: bool, what: str, detail: Any) -> None:
    if not ok:
        raise RuntimeError(f"smoke check failed for {what}: {detail!r}")


def _pool_size(rate: float, seconds: float, ctx: Context) -> int:
    """Tokens for ``seconds`` at ``rate`` plus one in flight per connection and thread."""
    return math.ceil(max(rate, MIN_POOL_RATE) * seconds) + ctx.connections + 4 * ctx.threads


def jwks(ctx: Context) -> LoadResult:
    status, headers, _ = http_request(ctx.server.port, "GET", "/.well-known/jwks.json")
    _smoke(status == 200 and "ETag" in headers, "jwks", status)
    _wrk(ctx, "jwks-warmup", ctx.warmup, "get", path="/.well-known/jwks.json")
    return _measured(ctx, "jwks", "get", path="/.well-known/jwks.json")


def me(ctx: Context) -> LoadResult:
    pairs = seed.session_pool(ctx.env, ME_POOL, ctx.users)
    access = [a for a, _ in pairs]
    status, _, body = http_request(
        ctx.server.port, "GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {access[0]}"}
    )
    _smoke(status == 200, "/me", body[:300])
    prefix = write_pool(ctx.workdir, "me", access, ctx.threads)
    _wrk(ctx, "me-warmup", ctx.warmup, "me", pool_prefix=prefix)
    result = _measured(ctx, "me", "me", pool_prefix=prefix)
    result.notes.append(f"{ME_POOL} distinct access tokens, round robin")
    return result


def _single_use(ctx: Context, name: str, pick: int) -> LoadResult:
    """refresh (pick=1: refresh tokens) or logout (pick=0: access tokens), each token once.

    The warm-up's pool is sized for the bare app's rate (no endpoint is faster than that); the
    measured pool for twice the warm-up's rate. A thread that runs dry stops and marks the run.
    """
    warm_pairs = seed.session_pool(
        ctx.env, _pool_size(ctx.bare_rps, ctx.warmup, ctx) + 1, ctx.users
    )
    _smoke_single_use(ctx, name, warm_pairs.pop()[pick])
    prefix = write_pool(ctx.workdir, f"{name}-warmup", [p[pick] for p in warm_pairs], ctx.threads)
    warm = _wrk(ctx, f"{name}-warmup", ctx.warmup, name, pool_prefix=prefix)
    rate = warm.rps * POOL_MARGIN if not warm.pool_dry else ctx.bare_rps
    pairs = seed.session_pool(ctx.env, _pool_size(rate, ctx.duration, ctx), ctx.users)
    prefix = write_pool(ctx.workdir, name, [p[pick] for p in pairs], ctx.threads)
    result = _measured(ctx, name, name, pool_prefix=prefix)
    result.notes.append(
        f"pool {result.pool_size} single-use tokens (warm-up {warm.rps:.0f}/s x {POOL_MARGIN}), "
        f"{result.pool_used} taken" + (", RAN DRY" if result.pool_dry else "")
    )
    return result


def _smoke_single_use(ctx: Context, name: str, token: str) -> None:
    port = ctx.server.port
    if name == "refresh":
        status, _, body = http_request(
            port, "POST", "/api/v1/auth/refresh", body={"refresh_token": token}
        )
    else:
        status, _, body = http_request(
            port, "POST", "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
        )
    _smoke(status == 200, name, body[:300])


def refresh(ctx: Context) -> LoadResult:
    return _single_use(ctx, "refresh", 1)


def logout(ctx: Context) -> LoadResult:
    return _single_use(ctx, "logout", 0)


def login(ctx: Context) -> LoadResult:
    status, _, body = http_request(
        ctx.server.port,
        "POST",
        "/api/v1/auth/login",
        body={"email": seed_email(ctx.users - 1), "password": SEED_PASSWORD},
    )
    _smoke(status == 200, "login", body[:300])
    _wrk(ctx, "login-warmup", ctx.warmup, "login")
    result = _measured(ctx, "login", "login")
    result.notes.append(f"round robin over {ctx.users} users from 2 offsets")
    return result


def register(ctx: Context) -> LoadResult:
    email = f"bench-smoke-{secrets.token_hex(4)}@bench.example.com"
    password = f"bench-pass-{time.time_ns()}-long-enough"
    status, _, body = http_request(
        ctx.server.port,
        "POST",
        "/api/v1/auth/register",
        body={"email": email, "password": password},
    )
    _smoke(status == 201, "register", body[:300])
    _wrk(
        ctx, "register-warmup", ctx.warmup, "register", extra_env={"BENCH_RUN_ID": ctx.run_id + "w"}
    )
    return _measured(ctx, "register", "register")


def _service_client(ctx: Context, name: str, scopes: tuple[str, ...]) -> str:
    """The ``Authorization: Basic`` value of a service client (made once per run)."""
    if name not in ctx.clients:
        ctx.clients[name] = seed.create_service_client(ctx.env, name, scopes)
    client_id, secret = ctx.clients[name]
    # RFC 6749 §2.3.1: each part form-encoded before base64 (a no-op for these characters)
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def client_credentials(ctx: Context) -> LoadResult:
    """POST /oauth2/token, grant_type=client_credentials, one client over HTTP Basic."""
    basic = _service_client(ctx, "bench-orders", ("orders:read", "orders:write"))
    status, _, body = http_request(
        ctx.server.port,
        "POST",
        "/oauth2/token",
        form={"grant_type": "client_credentials"},
        headers={"Authorization": basic},
    )
    _smoke(status == 200 and b"access_token" in body, "client_credentials", body[:300])
    extra = {"BENCH_BASIC": basic}
    _wrk(ctx, "client_credentials-warmup", ctx.warmup, "client_credentials", extra_env=extra)
    result = _measured(ctx, "client_credentials", "client_credentials", extra_env=extra)
    result.notes.append("one client, HTTP Basic, every scope of the client (none asked)")
    return result


def introspect(ctx: Context) -> LoadResult:
    """POST /oauth2/introspect of users' access tokens by a client with scope introspect."""
    basic = _service_client(ctx, "bench-gateway", ("introspect",))
    pairs = seed.session_pool(ctx.env, ME_POOL, ctx.users)
    access = [a for a, _ in pairs]
    status, _, body = http_request(
        ctx.server.port,
        "POST",
        "/oauth2/introspect",
        form={"token": access[0], "token_type_hint": "access_token"},
        headers={"Authorization": basic},
    )
    active = status == 200 and json.loads(body).get("active") is True
    _smoke(active, "introspect", body[:300])
    prefix = write_pool(ctx.workdir, "introspect", access, ctx.threads)
    extra = {"BENCH_BASIC": basic}
    _wrk(ctx, "introspect-warmup", ctx.warmup, "introspect", pool_prefix=prefix, extra_env=extra)
    result = _measured(ctx, "introspect", "introspect", pool_prefix=prefix, extra_env=extra)
    result.notes.append(
        f"{ME_POOL} distinct access tokens, round robin, one client over HTTP Basic"
    )
    return result


RUNNERS = {
    "jwks": jwks,
    "me": me,
    "refresh": refresh,
    "logout": logout,
    "login": login,
    "register": register,
    "client_credentials": client_credentials,
    "introspect": introspect,
}
