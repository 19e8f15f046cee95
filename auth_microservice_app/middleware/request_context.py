"""Request id and the one access-log line per request.

This line is the service's access log in every mode: gunicorn's own access log is off unless
GUNICORN_ACCESS_LOG asks for it (gunicorn.conf.py), and `make dev` leaves out Werkzeug's.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from ..logging_setup import clip

logger = logging.getLogger("auth_microservice_app.access")
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str:
    """This request's id: the caller's sane ``X-Request-ID``, else a new one (set once).

    Also callable before the before_request hooks ran (URL value preprocessors, routing), so
    an error raised that early still carries the caller's id.
    """
    request_id: str | None = g.get("request_id")
    if request_id is None:
        incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
        request_id = g.request_id = (
            incoming if SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
    return request_id


def _start_request() -> None:
    current_request_id()
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = current_request_id()
    if not logger.isEnabledFor(logging.INFO):  # LOG_LEVEL=WARNING: build no log record
        return response
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    # Cut before the log filter redacts them (once): a client's 8 KB URL costs 256 characters.
    logger.info(
        "request",
        extra={
            "method": request.method,
            "path": clip(request.path),
            "query": clip(request.query_string.decode("utf-8", "replace")) or None,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "user_id": g.get("user_id"),
            "remote_addr": request.remote_addr,
            "user_agent": clip(request.headers.get("User-Agent")),
        },
    )
    return response


def init_app(app: Flask) -> None:
    app.before_request(_start_request)
    app.after_request(_finish_request)
