"""Redis access with a circuit breaker: an unreachable Redis costs one timeout, not one per request.

Redis is an accelerator here, never the record: callers get ``RedisUnavailable`` and fall back to
the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from flask import Flask, current_app

logger = logging.getLogger(__name__)
T = TypeVar("T")

BLOCKLIST_PREFIX = "auth:blocklist:"
REVOKED_SID_PREFIX = "auth:revoked-sid:"
#: service client id -> the epoch second up to which its tokens are void
REVOKED_CLIENT_PREFIX = "auth:revoked-client:"
#: Present only once the blocklist has been rebuilt from the database after Redis came up empty.
BLOCKLIST_WARM_KEY = "auth:blocklist-warm"
BLOCKLIST_REBUILD_LOCK = "auth:blocklist-rebuild-lock"
#: OAuth single-use values (``state``, one-time ``code``), keyed by the SHA-256 of the secret.
OAUTH_ONE_TIME_PREFIX = "auth:oauth:"
#: Hash: kind -> rows the retention purge removed so far (read by /metrics in every process).
PURGED_ROWS_KEY = "auth:purged-rows"


class RedisUnavailable(Exception):
    """Redis is not configured, or failed and the breaker is open."""


class RedisGateway:
    def __init__(self, url: str | None, *, socket_timeout: float, retry_interval: float) -> None:
        self.client: redis.Redis | None = (
            redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                decode_responses=True,
            )
            if url
            else None
        )
        self.retry_interval = retry_interval
        self._open_until = 0.0
        self._lock = threading.Lock()
        #: Set when a write was lost while Redis was down: the blocklist must be rebuilt.
        self.lost_writes = False

    @property
    def configured(self) -> bool:
        return self.client is not None

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def run(self, operation: Callable[[redis.Redis], T]) -> T:
        """Run ``operation`` against Redis.

        :raises RedisUnavailable: not configured, breaker open, or the call failed (breaker opens).
        """
        if self.client is None:
            raise RedisUnavailable("redis is not configured")
        if self.is_open:
            raise RedisUnavailable("redis circuit is open")
        try:
            if self.lost_writes:
                # Revocations were written only to the database while Redis was unreachable:
                # drop the warm marker before trusting any answer, so every process reads the
                # database until the blocklist has been rebuilt from it.
                self.client.delete(BLOCKLIST_WARM_KEY)
                self.lost_writes = False
            return operation(self.client)
        except (redis.RedisError, OSError) as exc:
            with self._lock:
                self._open_until = time.monotonic() + self.retry_interval
            logger.warning("redis unavailable", extra={"error_type": type(exc).__name__})
            raise RedisUnavailable(str(type(exc).__name__)) from exc

    def ping(self) -> bool:
        return bool(self.run(lambda client: client.ping()))

    def reset(self) -> None:
        """Close the breaker and forget any lost writes, as a newly built gateway would.

        For tests, which flush Redis and set the blocklist warm between cases: nothing
        written during an earlier outage is owed to that Redis any more. Never call it to
        hide an outage from a running server; the breaker closes by itself after
        ``REDIS_RETRY_INTERVAL``.
        """
        with self._lock:
            self._open_until = 0.0
        self.lost_writes = False


def init_app(app: Flask) -> None:
    app.extensions["redis"] = RedisGateway(
        app.config.get("REDIS_URL"),
        socket_timeout=app.config["REDIS_SOCKET_TIMEOUT"],
        retry_interval=app.config["REDIS_RETRY_INTERVAL"],
    )


def get_redis() -> RedisGateway:
    gateway: RedisGateway = current_app.extensions["redis"]
    return gateway
