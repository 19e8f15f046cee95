"""CPU cost of one request per endpoint, in-process: the app, PostgreSQL and Redis, separately.

    .venv/bin/python bench/cpu_per_request.py
    .venv/bin/python bench/cpu_per_request.py --app-dir /tmp/scratch/patched --profile me

Complements bench/run.py: throughput under wrk says *what* the service sustains, this says
*where the CPU goes* per request, and stays meaningful on a machine other jobs share (thread CPU
time, not wall time). Same production configuration and seeding as bench/run.py; the Flask test
client replaces HTTP and gunicorn. ``--profile NAME`` prints a pyinstrument profile of NAME
(``pip install pyinstrument``; not a project dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import seed  # noqa: E402
from bench.common import (  # noqa: E402
    BENCH_DB,
    REPO,
    SEED_PASSWORD,
    USER_AGENT,
    CpuAccount,
    Settings,
    exclusive_run,
    free_port,
    log,
    production_env,
    seed_email,
    snapshot,
)

ENDPOINTS = ("jwks", "me", "refresh", "logout", "login", "register")
HEADERS = {"X-Forwarded-Proto": "https", "User-Agent": USER_AGENT}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--app-dir", type=Path, default=REPO)
    p.add_argument("--endpoints", default=",".join(ENDPOINTS))
    p.add_argument("--requests", type=int, default=400, help="per endpoint (login: a tenth)")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--jwt-alg", default="RS256", choices=("RS256", "ES256", "EdDSA"))
    p.add_argument("--profile", help="endpoint to profile with pyinstrument")
    p.add_argument("--json", type=Path, help="write the numbers here")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    return p.parse_args(argv)


def requests_for(name: str, count: int) -> int:
    return max(20, count // 10) if name in {"login", "register"} else count


def build_calls(
    name: str, client: Any, env: dict[str, str], users: int, count: int
) -> Callable[[int], Any]:
    """A function of the request number that sends request ``i`` of endpoint ``name``."""
    if name == "jwks":
        return lambda i: client.get("/.well-known/jwks.json", headers=HEADERS)
    if name == "login":
        return lambda i: client.post(
            "/api/v1/auth/login",
            json={"email": seed_email(i % users), "password": SEED_PASSWORD},
            headers=HEADERS,
        )
    if name == "register":
        stamp = time.time_ns()
        return lambda i: client.post(
            "/api/v1/auth/register",
            json={
                "email": f"cpu-{stamp}-{i}@bench.example.com",
                "password": f"bench-pass-{i}-long-enough",
            },
            headers=HEADERS,
        )
    pairs = seed.session_pool(env, count + 50, users)
    if name == "me":
        return lambda i: client.get(
            "/api/v1/auth/me", headers={**HEADERS, "Authorization": f"Bearer {pairs[i][0]}"}
        )
    if name == "refresh":
        return lambda i: client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pairs[i][1]}, headers=HEADERS
        )
    return lambda i: client.post(
        "/api/v1/auth/logout", headers={**HEADERS, "Authorization": f"Bearer {pairs[i][0]}"}
    )


def backends() -> dict[int, float]:
    """CPU seconds of each client backend of database bench (the app's pooled connections)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if f" {BENCH_DB} 127.0.0.1(" not in cmdline:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


class Counter:
    """SQL statements, transactions, pool checkouts (each one a pre-ping) and Redis commands."""

    def __init__(self, app: Any) -> None:
        import redis
        from sqlalchemy import event

        from auth_microservice_app.extensions import db

        self.counts: dict[str, int] = {}
        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", lambda *_: self._add("COMMIT"))
        event.listen(engine.pool, "checkout", lambda *_: self._add("pool checkout"))
        counter = self
        execute_command = redis.Redis.execute_command
        pipeline_execute = redis.client.Pipeline.execute

        def counted_command(client: Any, *args: Any, **kwargs: Any) -> Any:
            counter._add(f"redis {args[0]}")
            return execute_command(client, *args, **kwargs)  # type: ignore[no-untyped-call]

        def counted_pipeline(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            for command in pipe.command_stack:
                counter._add(f"redis {command[0][0]} (pipelined)")
            return pipeline_execute(pipe, *args, **kwargs)

        redis.Redis.execute_command = counted_command  # type: ignore[method-assign,assignment]
        redis.client.Pipeline.execute = counted_pipeline  # type: ignore[method-assign,assignment]

    def _add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        words = statement.split(None, 3)
        verb = words[0].upper() if words else "?"
        table = ""
        if verb == "INSERT" and len(words) > 2:
            table = words[2]
        elif verb == "UPDATE" and len(words) > 1:
            table = words[1]
        elif verb == "SELECT":
            match = re.search(r"\bFROM\s+(\w+)", statement)
            table = match.group(1) if match else ""
        self._add(f"{verb} {table}".strip())

    def per_request(self, requests: int) -> dict[str, float]:
        return {k: round(v / requests, 2) for k, v in sorted(self.counts.items())}


def measure(name: str, call: Callable[[int], Any], count: int, counter: Counter) -> dict[str, Any]:
    """Thread CPU per request in the app; its PostgreSQL backend's and Redis's CPU beside it."""
    for i in range(count, count + 20):  # warm-up on requests the measurement never sends
        response = call(i)
        if response.status_code >= 300:
            raise RuntimeError(f"{name}: {response.status_code} {response.get_data()[:300]!r}")
    cpu_ms = []
    counter.counts.clear()
    before = backends()
    with CpuAccount(None) as account:
        for i in range(count):
            started = time.thread_time()
            response = call(i)
            cpu_ms.append((time.thread_time() - started) * 1000)
            if response.status_code >= 300:
                raise RuntimeError(f"{name}: {response.status_code} {response.get_data()[:300]!r}")
    used = account.summary()
    postgres = sum(cpu - before.get(pid, 0.0) for pid, cpu in backends().items())
    return {
        "requests": count,
        "app_cpu_ms_median": round(statistics.median(cpu_ms), 3),
        "app_cpu_ms_mean": round(statistics.fmean(cpu_ms), 3),
        "postgres_cpu_ms": round(postgres * 1000 / count, 3),
        "redis_cpu_ms": round(used["redis"] * 1000 / count, 3),
        "wall_ms_mean": round(used["wall_s"] * 1000 / count, 3),
        "per_request": counter.per_request(count),
    }


def profile(name: str, call: Callable[[int], Any], count: int) -> str:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed: .venv/bin/pip install pyinstrument"
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for i in range(count):
        call(i)
    profiler.stop()
    text: str = profiler.output_text(unicode=False, color=False, show_all=False)
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with exclusive_run("bench/cpu_per_request.py"):
        return measure_all(args)


def measure_all(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="auth-cpu-"))
    snapshot(workdir / "app", args.app_dir.resolve())
    settings = Settings(
        jwt_alg=args.jwt_alg, extra_env=dict(item.split("=", 1) for item in args.env)
    )
    env = production_env(settings, workdir, free_port())
    seed.reset_database()
    seed.reset_redis()
    seed.migrate(env)
    seed.seed_users(args.users, seed.production_hash(Settings().argon2))
    seed.vacuum_analyze()
    seed.rebuild_blocklist(env)
    app = seed.make_app(env)
    client = app.test_client()
    counter = Counter(app)
    results: dict[str, Any] = {"app_dir": str(args.app_dir), "jwt_alg": args.jwt_alg}
    try:
        for name in [e for e in args.endpoints.split(",") if e]:
            count = requests_for(name, args.requests)
            # twice the requests: the profile (if any) gets fresh single-use tokens too
            call = build_calls(name, client, env, args.users, 2 * count + 40)
            results[name] = measure(name, call, count, counter)
            log(f"{name}: {json.dumps(results[name])}")
            if args.profile == name:
                offset = count + 20  # requests neither the warm-up nor the measurement sent

                def fresh(i: int, c: Callable[[int], Any] = call, n: int = offset) -> Any:
                    return c(n + i)

                print(profile(name, fresh, count))
    finally:
        seed.drop_database()
        seed.reset_redis()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
