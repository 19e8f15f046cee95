"""Password hashing with argon2id, and the random secrets the service hands out."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
    )


def password_hasher() -> PasswordHasher:
    config = current_app.config
    return _hasher(
        config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_COST"], config["ARGON2_PARALLELISM"]
    )


def _observe(operation: str, started: float) -> None:
    metrics = current_app.extensions.get("auth_metrics")
    if metrics is not None:
        metrics.password_hash.labels(operation=operation).observe(time.perf_counter() - started)


@lru_cache(maxsize=4)
def _slots(limit: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(limit)


@contextlib.contextmanager
def _hashing_slot() -> Iterator[None]:
    """At most ``ARGON2_MAX_CONCURRENT`` hashes at once in this process (0: no limit).

    argon2 releases the GIL, so without a limit every gthread thread of a worker hashes at
    once: memory grows by ``ARGON2_MEMORY_COST`` per thread (a flood of logins is a memory
    attack), and more hashes than cores only share the CPU, each thrashing the others' caches
    (measured: CPU per verification +13 % at 16 at once against 2). Waiting threads cost
    nothing; the other threads keep serving token checks.
    """
    limit = current_app.config.get("ARGON2_MAX_CONCURRENT", 0)
    if limit <= 0:
        yield
        return
    with _slots(limit):
        yield


def hash_password(password: str) -> str:
    with _hashing_slot():
        started = time.perf_counter()
        try:
            return password_hasher().hash(password)
        finally:
            _observe("hash", started)


def verify_password(password_hash: str, password: str) -> bool:
    with _hashing_slot():
        started = time.perf_counter()
        try:
            return password_hasher().verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        finally:
            _observe("verify", started)


def needs_rehash(password_hash: str) -> bool:
    return password_hasher().check_needs_rehash(password_hash)


@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_cost, parallelism).hash(secrets.token_urlsafe(16))


def burn_password_check(password: str) -> None:
    """Spend the time of a real verification when there is no hash to check against.

    Without it, an unknown email would answer measurably faster than a wrong password.
    """
    config = current_app.config
    params = (
        config["ARGON2_TIME_COST"],
        config["ARGON2_MEMORY_COST"],
        config["ARGON2_PARALLELISM"],
    )
    verify_password(_dummy_hash(*params), password)


def new_token_id() -> str:
    return secrets.token_urlsafe(16)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
