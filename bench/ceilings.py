"""CPU ceilings measured on this machine: argon2id verifications and JWT signatures per second.

Each runs in ``processes`` forked processes that start together and stop together, so the sum
is what that many gunicorn workers could do at most if they did nothing else.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any

WARMUP = 0.5


def _run_until(
    deadline_start: float, seconds: float, work: Callable[[], object]
) -> tuple[int, float]:
    """How many times ``work`` ran in the window, and the CPU seconds this process spent."""
    while time.monotonic() < deadline_start:
        time.sleep(0.001)
    end = deadline_start + seconds
    count = 0
    cpu = time.process_time()
    while time.monotonic() < end:
        work()
        count += 1
    return count, time.process_time() - cpu


def _parallel(
    worker: Callable[[float, float], tuple[int, float]], processes: int, seconds: float
) -> tuple[float, float]:
    """Operations per second of ``processes`` copies of ``worker`` over the same window, and
    the CPU milliseconds each operation took (the capacity of an idle machine follows from it)."""
    context = multiprocessing.get_context("fork")
    start = time.monotonic() + 1.0 + 0.05 * processes  # every process forked before the start
    with context.Pool(processes) as pool:
        results = pool.starmap(worker, [(start, seconds)] * processes)
    count = sum(n for n, _ in results)
    cpu = sum(c for _, c in results)
    return count / seconds, (1000 * cpu / count if count else 0.0)


_ARGON2: tuple[int, int, int] = (2, 19456, 1)
_JWT: dict[str, Any] = {}


def _argon2_worker(start: float, seconds: float) -> tuple[int, float]:
    from argon2 import PasswordHasher, Type

    t, m, p = _ARGON2
    hasher = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=Type.ID)
    password = "bench-password-long-enough"  # noqa: S105 - a throwaway
    digest = hasher.hash(password)
    return _run_until(start, seconds, lambda: hasher.verify(digest, password))


def argon2_ceiling(argon2: tuple[int, int, int], processes: int, seconds: float) -> dict[str, Any]:
    """argon2id verifications/s at ``argon2`` (t, m KiB, p) with 1 and with ``processes``."""
    global _ARGON2  # noqa: PLW0603 - read by the forked workers
    _ARGON2 = argon2
    single, single_cpu = _parallel(_argon2_worker, 1, seconds)
    total, cpu_ms = _parallel(_argon2_worker, processes, seconds)
    cores = len(os.sched_getaffinity(0))
    return {
        "processes": processes,
        "verify_per_s": round(total, 1),
        "verify_per_s_one_process": round(single, 1),
        "ms_per_verify_one_process": round(1000 / single, 2) if single else None,
        "cpu_ms_per_verify": round(cpu_ms, 3),
        # what the machine's cores could verify if nothing else ran (a shared machine lowers
        # verify_per_s, not the CPU one verification costs)
        "capacity_per_s": round(1000 * cores / cpu_ms, 1) if cpu_ms else None,
    }


def _jwt_setup() -> tuple[Any, Any, str, dict[str, Any], dict[str, Any]]:
    import jwt  # noqa: F401 - imported here, in the worker

    from auth_microservice_app.utils.keys import generate_private_key

    alg = _JWT["alg"]
    key = generate_private_key(alg)
    now = int(time.time())
    payload = {  # the shape of the service's access token
        "sub": "3f6c1c0e-8c1e-4a8f-9a57-2f1a3c5d7e90",
        "sid": "9b2f8f3e-1d4c-4e6b-8a0f-5c7d9e1f2a3b",
        "jti": "Jq0m2mWJ8f0QzS3u4kX1vA",
        "email": "bench-user-1@bench.example.com",
        "email_verified": True,
        "roles": ["user"],
        "amr": ["pwd"],
        "type": "access",
        "fresh": True,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "iss": "https://auth.bench.local",
        "aud": "auth-service",
    }
    headers = {"kid": "bench", "typ": "at+jwt"}
    return key, key.public_key(), alg, payload, headers


def _jwt_sign_worker(start: float, seconds: float) -> tuple[int, float]:
    import jwt

    key, _public, alg, payload, headers = _jwt_setup()
    return _run_until(start, seconds, lambda: jwt.encode(payload, key, alg, headers=headers))


def _jwt_verify_worker(start: float, seconds: float) -> tuple[int, float]:
    import jwt

    key, public, alg, payload, headers = _jwt_setup()
    token = jwt.encode(payload, key, alg, headers=headers)

    def verify() -> None:
        jwt.decode(token, public, algorithms=[alg], audience="auth-service", issuer=payload["iss"])

    return _run_until(start, seconds, verify)


def jwt_ceiling(alg: str, processes: int, seconds: float) -> dict[str, Any]:
    """PyJWT sign/s and verify/s for ``alg`` (same key type as the service), 1 and N processes."""
    _JWT["alg"] = alg
    sign, sign_cpu = _parallel(_jwt_sign_worker, processes, seconds)
    verify, verify_cpu = _parallel(_jwt_verify_worker, processes, seconds)
    return {
        "alg": alg,
        "processes": processes,
        "sign_per_s": round(sign, 1),
        "verify_per_s": round(verify, 1),
        "sign_per_s_one_process": round(_parallel(_jwt_sign_worker, 1, seconds)[0], 1),
        "verify_per_s_one_process": round(_parallel(_jwt_verify_worker, 1, seconds)[0], 1),
        "cpu_ms_per_sign": round(sign_cpu, 4),
        "cpu_ms_per_verify": round(verify_cpu, 4),
    }
