"""Structured logs: JSON lines (text in development), the request id on each line, no secrets."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from flask import g, has_request_context
from pythonjsonlogger.json import JsonFormatter

SENSITIVE_KEY = re.compile(
    r"pass(word)?|token|secret|authorization|cookie|api[_-]?key|code_verifier|otp|hash",
    re.IGNORECASE,
)
# Values that look like credentials wherever they appear in free text.
SENSITIVE_TEXT = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [REDACTED]"),
    (
        re.compile(
            r"(?i)([\"']?(?:[a-z_]*password|[a-z_]*token|secret|authorization|cookie)"
            r"[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,&}]+)"
        ),
        r"\1[REDACTED]",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[REDACTED_JWT]"),
    # OAuth query parameters (callback URLs): the authorization code, state and PKCE verifier.
    (re.compile(r"(?i)((?:^|[?&])(?:code|state|code_verifier)=)[^&\s]*"), r"\1[REDACTED]"),
]
RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}
REDACTED = "[REDACTED]"


def redact_text(text: str) -> str:
    for pattern, replacement in SENSITIVE_TEXT:
        text = pattern.sub(replacement, text)
    return text


def redact_value(key: str, value: Any, depth: int = 0) -> Any:
    if SENSITIVE_KEY.search(key):
        return REDACTED
    if depth > 5:
        return value
    if isinstance(value, dict):
        return {k: redact_value(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v, depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactionFilter(logging.Filter):
    """Scrubs credentials from the message, its arguments and structured extras."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        for key in list(record.__dict__):
            if key not in RESERVED:
                record.__dict__[key] = redact_value(key, record.__dict__[key])
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_request_context() else None
        return True


class RedactingJsonFormatter(JsonFormatter):
    """Tracebacks are text too: a secret in an exception message must not reach the log."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return redact_text(str(super().formatException(ei)))


class RedactingTextFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return redact_text(super().formatException(ei))


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is now (test capture swaps it after start-up)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(level: str, fmt: str) -> None:
    """Install one stdout handler on the root logger (idempotent across app instances)."""
    handler = StdoutHandler()
    if fmt == "json":
        handler.setFormatter(
            RedactingJsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(
            RedactingTextFormatter(
                "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"
            )
        )
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactionFilter())
    handler.set_name("auth_service")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "auth_service":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
