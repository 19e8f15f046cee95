"""Password hashing with argon2id, and the random secrets the service hands out.

Every hash and verification runs on a small pool of threads of its own in each process
(:class:`HashPool`, ``ARGON2_MAX_CONCURRENT`` threads, created on first use after gunicorn
forks the worker). A request thread hands its hash over and waits at most
``ARGON2_QUEUE_TIMEOUT`` seconds for one of them to *start* it; if none does, the work is
withdrawn and the request answers 503 ``service_unavailable`` with ``Retry-After``
(:class:`~..errors.HashingBusy`), the password unchecked.

Why threads of their own: glibc gives every thread that allocates argon2's memory
(``ARGON2_MEMORY_COST``, 19 MiB) a malloc arena of its own and keeps that memory after the hash.
When request threads hashed, a login flood left every gthread thread of a worker holding
19 MiB (threads x 19 MiB per worker, measured ~80 MB), even with at most one hash at a time.
On a fixed pool at most ``ARGON2_MAX_CONCURRENT`` arenas ever hold it. argon2-cffi releases
the GIL, so the other threads keep serving token checks while a hash runs.

Why a bounded wait: a request waiting for a hash thread holds a request thread, and a flood of
logins would otherwise hold them all, indefinitely, in front of everyone's ``/me`` (gthread
serves its queue in order). So besides the time, the number of request threads in the hash
path is bounded: ``ARGON2_MAX_CONCURRENT`` hashing plus ``ARGON2_MAX_WAITING`` waiting; one
more is refused at once (same 503), which leaves the worker's other threads to token checks.
And the hash threads run at ``ARGON2_NICE``: when a token check and a hash both want the CPU,
the token check gets it (the hash is the request that can afford to wait).
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

from ..errors import HashingBusy

T = TypeVar("T")
#: Seconds a request waits for a hash thread to start its hash when ARGON2_QUEUE_TIMEOUT is unset.
DEFAULT_QUEUE_TIMEOUT = 1.0
#: Recent verification outcomes kept per process for :func:`imitate_password_check`.
RECENT_OUTCOMES = 128
_random = secrets.SystemRandom()


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


def _observe(operation: str, seconds: float) -> None:
    metrics = current_app.extensions.get("auth_metrics")
    if metrics is not None:
        metrics.password_hash.labels(operation=operation).observe(seconds)


def _count_busy(operation: str) -> None:
    metrics = current_app.extensions.get("auth_metrics")
    if metrics is not None:
        metrics.password_hash_busy.labels(operation=operation).inc()


class NoHashThread(Exception):  # noqa: N818 - a state, not an error of the caller
    """No thread of the pool started the work within the timeout; it was withdrawn."""


class HashPool:
    """``size`` threads that compute every argon2 hash of this process, one at a time each.

    At most ``size`` hashes run at once: more than cores only share the CPU and thrash each
    other's caches (measured: CPU per verification +13 % at 16 at once against 2), and only
    these threads ever hold argon2's memory. ``thread_ids`` and ``computed`` say which threads
    ran work and how much (tests and the bench read them).
    """

    def __init__(self, size: int, nice: int = 0) -> None:
        self.size = size
        self.nice = nice
        self._executor = ThreadPoolExecutor(
            max_workers=size, thread_name_prefix="argon2", initializer=self._lower_priority
        )
        self._lock = threading.Lock()
        self.thread_ids: set[int] = set()
        self.native_ids: set[int] = set()
        self.computed = 0

    def _lower_priority(self) -> None:
        """Token checks first: on Linux the nice value is per thread, and a hash thread at
        ``ARGON2_NICE`` gives way to the request threads whenever both want the CPU."""
        if self.nice > 0:
            with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)

    def _call(self, work: Callable[[], T]) -> tuple[T, float]:
        with self._lock:
            self.thread_ids.add(threading.get_ident())
            self.native_ids.add(threading.get_native_id())
        started = time.perf_counter()
        try:
            return work(), time.perf_counter() - started
        finally:
            with self._lock:
                self.computed += 1

    def queued(self) -> int:
        """Work waiting for a thread (approximate: a withdrawn item counts until skipped)."""
        return self._executor._work_queue.qsize()

    def run(self, work: Callable[[], T], timeout: float) -> tuple[T, float]:
        """``work()`` on a pool thread, and the seconds it ran there.

        :raises NoHashThread: no thread started it within ``timeout`` seconds; it never will.
            Once started, the work is always waited for (it takes one hash).
        """
        future = self._executor.submit(self._call, work)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            if future.cancel():  # still queued: withdrawn, so it never runs
                raise NoHashThread() from None
        return future.result()  # it started meanwhile: one hash more to wait for


_pools: dict[tuple[int, int], HashPool] = {}
_pools_lock = threading.Lock()


_places: dict[int, threading.BoundedSemaphore] = {}


def hash_pool(size: int, nice: int = 0) -> HashPool:
    """This process's pool of ``size`` hash threads at ``nice`` (created on first use)."""
    key = (size, nice)
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = HashPool(size, nice)
    return pool


def app_hash_pool() -> HashPool | None:
    """The pool the current app's settings hash on (None: ``ARGON2_MAX_CONCURRENT=0``)."""
    config = current_app.config
    size = int(config.get("ARGON2_MAX_CONCURRENT", 0))
    return hash_pool(size, int(config.get("ARGON2_NICE", 0))) if size > 0 else None


def _hash_places(count: int) -> threading.BoundedSemaphore:
    """Request threads of this process that may be in the hash path at once (hashing, waiting
    for a hash thread, or imitating either); see :func:`_compute`."""
    places = _places.get(count)
    if places is None:
        with _pools_lock:
            places = _places.setdefault(count, threading.BoundedSemaphore(count))
    return places


def _forget_pools_in_child() -> None:
    # A forked child (a gunicorn worker, if the app were ever preloaded) has none of the
    # parent's threads: it builds its own pool on first use.
    global _pools_lock  # noqa: PLW0603
    _pools.clear()
    _places.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_in_child)


#: (seconds the request waited in all, refused) of this process's recent verifications.
_recent: deque[tuple[float, bool]] = deque(maxlen=RECENT_OUTCOMES)


def forget_recent() -> None:
    """Forget the recent verification times that :func:`imitate_password_check` replays.

    For tests, so one test's timings (or refusals) are not replayed in the next; with none
    remembered, the next imitation does one real verification, as in a new process.
    """
    _recent.clear()


def _busy() -> HashingBusy:
    timeout = float(current_app.config.get("ARGON2_QUEUE_TIMEOUT", DEFAULT_QUEUE_TIMEOUT))
    retry_after = str(max(1, math.ceil(timeout)))
    return HashingBusy(
        details={"retry_after": int(retry_after)}, headers={"Retry-After": retry_after}
    )


@contextlib.contextmanager
def _place(config: Any) -> Iterator[None]:
    """One of the ``ARGON2_MAX_CONCURRENT + ARGON2_MAX_WAITING`` places in the hash path.

    Refused at once when all are taken: waiting could only end in a 503 later, and a request
    thread held meanwhile is one fewer for everyone else's token checks (gthread serves its
    queue in order, so a ``/me`` behind held threads waits for all of them).

    :raises NoHashThread: no place free.
    """
    count = int(config["ARGON2_MAX_CONCURRENT"]) + int(config.get("ARGON2_MAX_WAITING", 0))
    places = _hash_places(count)
    if not places.acquire(blocking=False):
        raise NoHashThread()
    try:
        yield
    finally:
        places.release()


def ensure_hash_capacity() -> None:
    """Refuse now what the hash path would refuse later: no place free in it at this moment.

    For the start of a sign-in, before its database and Redis work: under a flood, a refusal
    then costs almost nothing. Decided before the account is looked up, so it says nothing
    about it. (A place may still be missing later: :func:`_compute` decides for good.)

    :raises HashingBusy: every place in the hash path is taken.
    """
    config = current_app.config
    if int(config.get("ARGON2_MAX_CONCURRENT", 0)) <= 0:
        return
    try:
        with _place(config):
            pass
    except NoHashThread:
        _count_busy("verify")
        raise _busy() from None


def _compute(operation: str, work: Callable[[], T]) -> T:
    """Run one argon2 operation on this process's hash threads, within the queue bounds.

    :raises HashingBusy: no place in the hash path, or no hash thread free within
        ``ARGON2_QUEUE_TIMEOUT``.
    """
    config = current_app.config
    limit = int(config.get("ARGON2_MAX_CONCURRENT", 0))
    started = time.perf_counter()
    if limit <= 0:  # no limit: on the request thread, as many at once as there are threads
        value = work()
        seconds = time.perf_counter() - started
    else:
        timeout = float(config.get("ARGON2_QUEUE_TIMEOUT", DEFAULT_QUEUE_TIMEOUT))
        pool = hash_pool(limit, int(config.get("ARGON2_NICE", 0)))
        try:
            with _place(config):
                value, seconds = pool.run(work, timeout)
        except NoHashThread:
            if operation == "verify":
                _recent.append((time.perf_counter() - started, True))
            _count_busy(operation)
            raise _busy() from None
    if operation == "verify":
        _recent.append((time.perf_counter() - started, False))
    _observe(operation, seconds)
    return value


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``.

    :raises HashingBusy: no hash thread was free within ``ARGON2_QUEUE_TIMEOUT``.
    """
    hasher = password_hasher()
    return _compute("hash", lambda: hasher.hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (False for a malformed hash too).

    :raises HashingBusy: no hash thread was free within ``ARGON2_QUEUE_TIMEOUT``.
    """
    hasher = password_hasher()

    def verify() -> bool:
        try:
            return hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return _compute("verify", verify)


def needs_rehash(password_hash: str) -> bool:
    return password_hasher().check_needs_rehash(password_hash)


_dummy_hashes: dict[tuple[int, int, int], str] = {}


def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    params = (time_cost, memory_cost, parallelism)
    found = _dummy_hashes.get(params)
    if found is None:  # made once per process, on a hash thread like any other
        found = _dummy_hashes.setdefault(params, hash_password(secrets.token_urlsafe(16)))
    return found


def burn_password_check(password: str) -> None:
    """Spend the time of a real verification when there is no hash to check against.

    Without it, an unknown email would answer measurably faster than a wrong password.

    :raises HashingBusy: as :func:`verify_password`.
    """
    config = current_app.config
    params = (
        config["ARGON2_TIME_COST"],
        config["ARGON2_MEMORY_COST"],
        config["ARGON2_PARALLELISM"],
    )
    verify_password(_dummy_hash(*params), password)


def imitate_password_check(password: str) -> None:
    """Take as long as a verification recently took in this process, computing nothing.

    Replays one of the last :data:`RECENT_OUTCOMES` verifications at random: waits as long as
    that request waited in all (for a hash thread, then for the hash), holding a place in the
    hash path as it did (refused at once when none is free, as it would be), and if that one
    was refused, is refused too. So timings and the share of 503s follow those of real
    verifications at this moment, under load included, at no CPU and no argon2 memory, and
    without taking a hash thread from real sign-ins. With no verification seen yet, it does
    one (:func:`burn_password_check`).

    :raises HashingBusy: as the replayed verification was.
    """
    if not _recent:
        burn_password_check(password)
        return
    seconds, refused = _random.choice(list(_recent))
    config = current_app.config
    try:
        if int(config.get("ARGON2_MAX_CONCURRENT", 0)) > 0:
            with _place(config):  # held as long as the real one held it
                time.sleep(seconds)
        else:
            time.sleep(seconds)
    except NoHashThread:
        refused = True
    if refused:
        _count_busy("verify")
        raise _busy()
