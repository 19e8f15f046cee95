"""Per-account brute-force throttle: consecutive failures buy an exponentially growing wait.

After ``LOGIN_THROTTLE_THRESHOLD`` consecutive failures against one account (password or 2FA
code), every attempt is answered 429 with ``Retry-After`` until the wait is over, without checking
the password, so the answer never tells whether a guess was right. Each further failure doubles
the wait up to ``LOGIN_THROTTLE_MAX_SECONDS``; a success clears the count; a quiet
``LOGIN_FAILURE_WINDOW`` forgets it.

Trade-off: an attacker who knows an email can keep that account in short waits, but never
locked: the wait is capped (5 minutes by default), it costs the attacker a steady stream of
requests that the per-IP limits also count, and the user still signs in through a magic link,
OAuth or a password reset, none of which this throttle blocks. A hard lockout would hand every
attacker a denial-of-service switch for any account.

Second-factor codes: a wrong code counts toward the account's count (so code guessing also slows
password sign-in) and toward a code-only count; ``/2fa/verify`` waits on the code-only count
alone. Wrong passwords from someone else therefore never block the owner's second step, and
the magic-link and OAuth paths (which end at that step for 2FA users) stay open.

State lives in Redis (shared by every worker); while Redis is down each process keeps its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
from collections import OrderedDict
from typing import cast

import redis
from flask import current_app

from ..errors import RateLimited
from ..utils.redis_client import RedisUnavailable, get_redis
from . import events

PREFIX = "auth:throttle:"
_LOCAL_LIMIT = 10_000


class _LocalStore:
    """Process-local fallback: bounded, oldest entries dropped first."""

    def __init__(self) -> None:
        self._data: OrderedDict[str, tuple[int, float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[int, float]:
        with self._lock:
            failures, blocked_until, expires = self._data.get(key, (0, 0.0, 0.0))
            if expires and expires < time.time():
                self._data.pop(key, None)
                return 0, 0.0
            return failures, blocked_until

    def set(self, key: str, failures: int, blocked_until: float, ttl: int) -> None:
        with self._lock:
            self._data[key] = (failures, blocked_until, time.time() + ttl)
            self._data.move_to_end(key)
            while len(self._data) > _LOCAL_LIMIT:
                self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


_local = _LocalStore()


def account_key(subject: str) -> str:
    return PREFIX + hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:32]


def _read(key: str) -> tuple[int, float]:
    try:
        values = get_redis().run(lambda r: r.hmget(key, ["failures", "blocked_until"]))
    except RedisUnavailable:
        return _local.get(key)
    failures, blocked_until = cast("list[str | None]", values)
    return int(failures or 0), float(blocked_until or 0)


def check(subject: str) -> None:
    """Refuse the attempt while the account is in a wait.

    :raises RateLimited: with ``Retry-After``.
    """
    if not current_app.config["LOGIN_THROTTLE_ENABLED"]:
        return
    _, blocked_until = _read(account_key(subject))
    wait = blocked_until - time.time()
    if wait > 0:
        retry_after = str(max(1, math.ceil(wait)))
        events.record("login_throttled", reason="too_many_failures")
        raise RateLimited(
            "Too many failed attempts. Try again later.",
            details={"retry_after": int(retry_after)},
            headers={"Retry-After": retry_after},
        )


def _wait(failures: int) -> float:
    config = current_app.config
    over = failures - config["LOGIN_THROTTLE_THRESHOLD"]
    if over < 0:
        return 0.0
    return float(
        min(config["LOGIN_THROTTLE_BASE_SECONDS"] * 2**over, config["LOGIN_THROTTLE_MAX_SECONDS"])
    )


def record_failure(subject: str) -> None:
    """Count one more consecutive failure (atomically in Redis) and start the wait it earns."""
    config = current_app.config
    if not config["LOGIN_THROTTLE_ENABLED"]:
        return
    key = account_key(subject)
    ttl = int(config["LOGIN_FAILURE_WINDOW"]) + int(config["LOGIN_THROTTLE_MAX_SECONDS"])
    try:
        failures = int(cast("int", get_redis().run(lambda r: r.hincrby(key, "failures", 1))))
        wait = _wait(failures)
        blocked_until = str(time.time() + wait if wait else 0)

        def write(client: redis.Redis) -> None:
            pipe = client.pipeline()
            pipe.hset(key, "blocked_until", blocked_until)
            pipe.expire(key, ttl)
            pipe.execute()

        get_redis().run(write)
    except RedisUnavailable:
        failures = _local.get(key)[0] + 1
        wait = _wait(failures)
        _local.set(key, failures, time.time() + wait if wait else 0.0, ttl)


def reset(subject: str) -> None:
    key = account_key(subject)
    _local.delete(key)
    with contextlib.suppress(RedisUnavailable):
        get_redis().run(lambda r: r.delete(key))
