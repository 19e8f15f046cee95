"""Hold every hash thread of this process, so that the next hash has to wait for one."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from auth_microservice_app.utils import security


@contextlib.contextmanager
def hash_threads_held(size: int = 1) -> Iterator[security.HashPool]:
    """All ``size`` threads of the ``ARGON2_MAX_CONCURRENT=size`` pool busy until the block ends.

    Deterministic: each holder is running on a pool thread before the block starts, and the
    block's own hashes queue behind them.
    """
    pool = security.hash_pool(size)
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
