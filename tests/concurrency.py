"""Release N requests at once: each thread has its own test client (own app context and
database connection) and waits at a barrier, so the requests are in flight together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def race(app: Any, requests: list[Callable[[Any], Any]], *, timeout: float = 60) -> list[Any]:
    """The responses of ``requests`` (each called with a fresh test client), in order."""
    barrier = threading.Barrier(len(requests))
    results: list[Any] = [None] * len(requests)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        client = app.test_client()
        barrier.wait()
        try:
            results[index] = requests[index](client)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert all(not thread.is_alive() for thread in threads), "a request hung"
    if errors:
        raise errors[0]
    return results
