"""Hold every hash thread of this process, so that the next hash has to wait for one."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from flask import Flask

from auth_microservice_app.identity import hashing as security


def pool_of(app: Flask) -> security.HashPool:
    """The hash threads ``app``'s settings hash on, in this process."""
    with app.app_context():
        pool = security.app_hash_pool()
    assert pool is not None, "ARGON2_MAX_CONCURRENT=0: no hash threads"
    return pool


@contextlib.contextmanager
def hash_threads_held(app: Flask) -> Iterator[security.HashPool]:
    """Every thread of ``app``'s hash pool busy until the block ends.

    Deterministic: each holder is running on a pool thread before the block starts, and the
    block's own hashes queue behind them.
    """
    pool = pool_of(app)
    size = pool.size
    running = threading.Barrier(size + 1)
    release = threading.Event()

    def hold() -> None:
        running.wait(timeout=10)
        release.wait(timeout=60)

    holders = [threading.Thread(target=pool.run, args=(hold, 60.0)) for _ in range(size)]
    for holder in holders:
        holder.start()
    try:
        running.wait(timeout=10)
        yield pool
    finally:
        release.set()
        for holder in holders:
            holder.join(timeout=10)
