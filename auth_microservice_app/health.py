"""Liveness and readiness: `/health/live` says the process serves, `/health` checks dependencies.

Each dependency check runs in a worker thread under ``HEALTH_CHECK_TIMEOUT`` so a database that
accepts connections but never answers yields 503 in bounded time instead of a hung probe. That
503 carries the report and the error envelope (``service_unavailable``) with ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from kombu import Connection
from sqlalchemy import Engine, text

from .errors import DATABASE_RETRY_AFTER, ServiceUnavailable, error_envelope
from .extensions import db
from .utils.redis_client import get_redis

bp = Blueprint("health", __name__)
_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")


def _timed(check: Callable[[], Any], timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    future = _executor.submit(check)
    try:
        future.result(timeout=timeout)
    except FutureTimeout:
        return {"status": "down", "error": "timeout"}
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the type is enough
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_database(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _check_broker(url: str, timeout: float) -> None:
    with Connection(url, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)


def _database_down(checks: dict[str, dict[str, Any]]) -> Response:
    """The report, in the error envelope every 503 of the service has, with ``Retry-After``.

    Readiness probes only read the status; clients and load balancers that treat the service
    as one API get the same ``service_unavailable`` as from any other endpoint.
    """
    body = error_envelope(ServiceUnavailable.code, "The database is unreachable.")
    response = jsonify(status="down", checks=checks, **body)
    response.headers["Retry-After"] = DATABASE_RETRY_AFTER
    return response


@bp.get("/health/live")
def live() -> Response:
    return jsonify(status="ok")


@bp.get("/health")
def health() -> tuple[Response, int]:
    timeout = current_app.config["HEALTH_CHECK_TIMEOUT"]
    engine = db.engine
    checks: dict[str, dict[str, Any]] = {
        "database": _timed(lambda: _check_database(engine), timeout)
    }

    gateway = get_redis()
    if gateway.client is not None:
        # Ping the client directly, bypassing the breaker: health must report Redis as it is now.
        client = gateway.client
        checks["redis"] = _timed(client.ping, timeout)
    else:
        checks["redis"] = {"status": "not_configured"}

    broker = current_app.config.get("CELERY_BROKER_URL")
    if broker:
        checks["broker"] = _timed(lambda: _check_broker(broker, timeout), timeout)
    else:
        checks["broker"] = {"status": "not_configured"}

    if checks["database"]["status"] != "up":
        return _database_down(checks), 503
    degraded = any(check["status"] == "down" for check in checks.values())
    return jsonify(status="degraded" if degraded else "ok", checks=checks), 200
