"""Connection handling that keeps a request's database round trips to the statements it needs.

Two measured costs on the request path (``bench/cpu_per_request.py``, round trips per request):

* ``pool_pre_ping`` sends ``SELECT 1`` on *every* checkout, and psycopg2 turns autocommit off
  and on around it. Like HikariCP's ``aliveBypassWindowMs``, a connection used moments ago is
  trusted instead; only one idle for ``DB_POOL_PING_AFTER`` seconds or more is pinged. A dead
  one is replaced before the request sees it (the pool retries the checkout).
* A transaction costs ``BEGIN`` and ``COMMIT``/``ROLLBACK`` as round trips of their own with
  psycopg2. Work that is one statement (``GET /me``'s read, refresh's conditional
  ``UPDATE ... RETURNING``) runs on an autocommit connection instead: one round trip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DisconnectionError

from .extensions import db

_IDLE_SINCE = "auth_idle_since"
#: How long a write waits for another process's write to the same SQLite file.
SQLITE_BUSY_TIMEOUT_S = 15.0


@contextmanager
def autocommit_connection() -> Iterator[Connection]:
    """A pooled connection outside the request's session; each statement commits by itself."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection


def ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use when it has been idle ``idle_seconds`` or more."""

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return  # just connected, or in use moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise DisconnectionError() from error  # the pool reconnects and retries
            raise

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def share_sqlite(engine: Engine) -> None:
    """Let several processes use one SQLite file (`make run` starts several gunicorn workers).

    Write-ahead logging lets readers go on while one process writes, and a writer that finds
    the file locked waits for it (``SQLITE_BUSY_TIMEOUT_S``) instead of failing at once.
    """

    def connected(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")  # an in-memory database stays "memory"
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cursor.close()

    event.listen(engine, "connect", connected)
