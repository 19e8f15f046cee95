"""The bench database: created, migrated and filled with COPY; tokens minted with the app's code.

Users share one argon2id hash made at the production parameters (verifying it costs exactly what a
real login costs). Sessions are bulk-inserted and their tokens minted with
``services._token_pair`` on transient ``User``/``UserSession`` objects, so the claims are the
app's own, byte for byte what ``start_session`` would have issued for those rows.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import redis
from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT

from . import common
from .common import (
    ADMIN_DSN,
    BENCH_DB,
    BIN,
    DATABASE_URL,
    REDIS_URL,
    SEED_PASSWORD,
    USER_AGENT,
    log,
    seed_email,
)

COPY_CHUNK = 100_000
MINT_CHUNK = 500


# --- database and Redis ------------------------------------------------------------------------


def reset_database() -> None:
    """Drop and recreate the ``bench`` database (never any other)."""
    conn = psycopg2.connect(ADMIN_DSN)
    conn.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {BENCH_DB}")
    conn.close()


def drop_database() -> None:
    conn = psycopg2.connect(ADMIN_DSN)
    conn.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    conn.close()


def reset_redis() -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()


def migrate(env: dict[str, str]) -> str:
    """``flask db upgrade`` with the production environment, as a deployment's migration job.

    Returns a warning when the migrations had several heads (work in progress on two branches)
    and ``db upgrade heads`` had to be used instead; raises when neither works.
    """
    command = [str(BIN / "flask"), "--app", "auth_microservice_app.app", "db", "upgrade"]
    out = subprocess.run(  # noqa: S603 - flask from our venv
        command, cwd=common.APP_ROOT, env=env, check=False, capture_output=True, text=True
    )
    warning = ""
    if out.returncode and "Multiple head revisions" in out.stdout + out.stderr:
        warning = "migrations have several heads: `flask db upgrade` refused, used `upgrade heads`"
        out = subprocess.run(  # noqa: S603 - flask from our venv
            [*command, "heads"],
            cwd=common.APP_ROOT,
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
    if out.returncode:
        raise RuntimeError(f"flask db upgrade failed:\n{(out.stdout + out.stderr)[-3000:]}")
    return warning


def _copy(table: str, columns: str, rows: Iterator[str]) -> int:
    """COPY text rows (tab-separated, one per line) into ``table`` in chunks; returns the count."""
    total = 0
    with psycopg2.connect(DATABASE_URL) as conn, conn.cursor() as cur:
        buffer = io.StringIO()
        count = 0
        for line in rows:
            buffer.write(line)
            count += 1
            if count == COPY_CHUNK:
                buffer.seek(0)
                cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
                total += count
                buffer, count = io.StringIO(), 0
        if count:
            buffer.seek(0)
            cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
            total += count
    return total


def vacuum_analyze() -> None:
    """Fresh planner statistics after bulk loads, as autovacuum would have them in production."""
    conn = psycopg2.connect(DATABASE_URL)
    conn.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.close()


def production_hash(argon2: tuple[int, int, int]) -> str:
    """One argon2id hash of the shared password at exactly the parameters the service uses."""
    from argon2 import PasswordHasher, Type

    t, m, p = argon2
    hasher = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=Type.ID)
    return hasher.hash(SEED_PASSWORD)


# --- users and revocations ---------------------------------------------------------------------


def seed_users(count: int, password_hash: str) -> float:
    """COPY ``count`` users ``bench-user-<i>@bench.example.com``; returns the seconds it took."""
    started = time.perf_counter()
    now = datetime.now(UTC).isoformat()

    def rows() -> Iterator[str]:
        for index in range(count):
            yield (
                f"{uuid.uuid4()}\t{seed_email(index)}\t{password_hash}\tBench User {index}\t"
                f'{now}\tt\t["user"]\t{now}\t{now}\n'
            )

    _copy(
        "users",
        "id, email, password_hash, name, email_verified_at, is_active, roles, created_at, "
        "updated_at",
        rows(),
    )
    return time.perf_counter() - started


def seed_revoked(count: int) -> float:
    """COPY ``count`` revoked access tokens that expire in the next hours to days."""
    started = time.perf_counter()
    with psycopg2.connect(DATABASE_URL) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM users LIMIT 1000")
        owners = [str(row[0]) for row in cur.fetchall()]
    now = datetime.now(UTC)

    def rows() -> Iterator[str]:
        for index in range(count):
            expires = now + timedelta(seconds=3600 + index % 86400)
            owner = owners[index % len(owners)]
            jti = secrets.token_urlsafe(16)
            yield f"{jti}\t{owner}\t{expires.isoformat()}\t{now.isoformat()}\n"

    _copy("revoked_tokens", "jti, user_id, expires_at, revoked_at", rows())
    return time.perf_counter() - started


def rebuild_blocklist(env: dict[str, str]) -> tuple[int, float]:
    """The app's own ``rebuild_blocklist()``: Redis then holds every revocation, and is warm."""
    from auth_microservice_app.extensions import db
    from auth_microservice_app.identity.revocation import rebuild_blocklist as rebuild

    app = make_app(env)
    started = time.perf_counter()
    with app.app_context():
        written = rebuild()
        db.session.remove()
        db.engine.dispose()
    return written, time.perf_counter() - started


def create_service_client(
    env: dict[str, str], name: str, scopes: tuple[str, ...]
) -> tuple[str, str]:
    """A service client made by the app's own ``create_client`` (what ``flask clients create``
    runs); its ``(client_id, client_secret)``."""
    from auth_microservice_app.extensions import db
    from auth_microservice_app.identity.clients import create_client

    app = make_app(env)
    with app.app_context():
        client, secret = create_client(name, scopes)
        client_id = str(client.client_id)
        db.session.remove()
        db.engine.dispose()
    return client_id, secret


def footprint() -> dict[str, Any]:
    """Sizes after seeding: the bench database and its tables, Redis DB 14's keys and memory."""
    sizes: dict[str, Any] = {}
    try:
        with psycopg2.connect(DATABASE_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            row = cur.fetchone()
            sizes["database_mib"] = round(int(row[0]) / 2**20, 1) if row else None
            cur.execute(
                "SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables "
                "ORDER BY 2 DESC LIMIT 5"
            )
            sizes["tables_mib"] = {name: round(size / 2**20, 1) for name, size in cur.fetchall()}
        client = redis.Redis.from_url(REDIS_URL)
        memory: dict[str, Any] = client.info("memory")  # type: ignore[assignment]
        sizes["redis_keys"] = int(client.dbsize())  # type: ignore[arg-type]
        sizes["redis_used_memory_mib"] = round(int(memory["used_memory"]) / 2**20, 1)
    except (psycopg2.Error, redis.RedisError, KeyError, ValueError) as exc:
        sizes["error"] = str(exc)
    return sizes


def make_app(env: dict[str, str]) -> Any:
    """``create_app`` with exactly the environment the served app gets."""
    from auth_microservice_app.app import create_app
    from auth_microservice_app.config import load_config

    return create_app(load_config("production", env))


# --- sessions and their tokens -----------------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    id: str
    user_id: str
    email: str
    issued_at: datetime
    expires_at: datetime
    access_jti: str
    refresh_jti: str


def insert_sessions(env: dict[str, str], count: int, users: int) -> list[SessionRow]:
    """COPY ``count`` open sessions spread over up to 50,000 users (as ``start_session`` makes)."""
    with psycopg2.connect(DATABASE_URL) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, email FROM users LIMIT %s", (min(users, 50_000),))
        owners = [(str(row[0]), str(row[1])) for row in cur.fetchall()]
    issued = datetime.now(UTC).replace(microsecond=0)
    expires = issued + timedelta(seconds=int(env.get("SESSION_MAX_AGE", 90 * 24 * 3600)))
    sessions = [
        SessionRow(
            id=str(uuid.uuid4()),
            user_id=owners[index % len(owners)][0],
            email=owners[index % len(owners)][1],
            issued_at=issued,
            expires_at=expires,
            access_jti=secrets.token_urlsafe(16),
            refresh_jti=secrets.token_urlsafe(16),
        )
        for index in range(count)
    ]

    def rows() -> Iterator[str]:
        for s in sessions:
            at = s.issued_at.isoformat()
            yield (
                f"{s.id}\t{s.user_id}\t{at}\t{at}\t{s.expires_at.isoformat()}\t\\N\t\\N\t"
                f'{USER_AGENT}\t127.0.0.1\t["pwd"]\t{s.refresh_jti}\t{s.access_jti}\t{at}\t\\N\n'
            )

    _copy(
        "user_sessions",
        "id, user_id, created_at, last_used_at, expires_at, revoked_at, revoked_reason, "
        "user_agent, ip, amr, refresh_jti, access_jti, issued_at, previous_refresh_jti",
        rows(),
    )
    return sessions


_MINT_APP: Any = None


def _init_minter(env: dict[str, str]) -> None:
    global _MINT_APP  # noqa: PLW0603 - one app per pool process
    _MINT_APP = make_app(env)


def _mint_chunk(rows: list[SessionRow]) -> list[tuple[str, str]]:
    from auth_microservice_app.identity.sessions import _token_pair
    from auth_microservice_app.models import User, UserSession

    pairs = []
    with _MINT_APP.app_context():
        for row in rows:
            user = User(
                id=uuid.UUID(row.user_id),
                email=row.email,
                roles=["user"],
                email_verified_at=row.issued_at,
                is_active=True,
            )
            session = UserSession(
                id=uuid.UUID(row.id),
                user_id=user.id,
                amr=["pwd"],
                issued_at=row.issued_at,
                expires_at=row.expires_at,
                access_jti=row.access_jti,
                refresh_jti=row.refresh_jti,
            )
            pair = _token_pair(user, session, fresh=True)  # what start_session returns
            pairs.append((pair.access_token, pair.refresh_token))
    return pairs


def mint_pairs(env: dict[str, str], sessions: list[SessionRow]) -> list[tuple[str, str]]:
    """(access, refresh) for each session, in order, signed on every core."""
    chunks = [sessions[i : i + MINT_CHUNK] for i in range(0, len(sessions), MINT_CHUNK)]
    processes = max(1, min(len(os.sched_getaffinity(0)), len(chunks)))
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=_init_minter, initargs=(env,)) as pool:
        results = pool.map(_mint_chunk, chunks)
    return [pair for chunk in results for pair in chunk]


def session_pool(env: dict[str, str], count: int, users: int) -> list[tuple[str, str]]:
    """``count`` fresh sessions with their (access, refresh) tokens; logs the time it took."""
    started = time.perf_counter()
    sessions = insert_sessions(env, count, users)
    pairs = mint_pairs(env, sessions)
    log(f"  {count} sessions inserted and minted in {time.perf_counter() - started:.1f}s")
    return pairs
