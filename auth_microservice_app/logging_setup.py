"""Structured logs: JSON lines (text in development), the request id on each line, no secrets."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import click
from flask import g, has_request_context
from pythonjsonlogger.json import JsonFormatter

SENSITIVE_KEY = re.compile(
    r"pass(word)?|token|secret|authorization|cookie|api[_-]?key|code_verifier|otp|hash",
    re.IGNORECASE,
)
#: Values that look like credentials wherever they appear in free text.
#:
#: These run on request data (paths, queries, user agents, exception messages), so each must
#: take linear time on any input: a pattern starts only where its run of characters starts (a
#: lookbehind), its quantifiers are bounded or possessive, so no input makes the engine retry a
#: run from every one of its positions (``[a-z_]*password`` over 8,000 letters took a second).
SENSITIVE_TEXT = [
    (
        re.compile(r"(?i)(?<![a-z0-9])(bearer|basic)\s{1,16}+[A-Za-z0-9._~+/=-]++"),
        r"\1 [REDACTED]",
    ),
    (
        re.compile(
            # the name's own prefix (``refresh_`` of ``refresh_token``) stays outside the match
            r"(?i)((?:password|token|secret|authorization|cookie)[\"']?\s{0,16}+[:=]\s{0,16}+)"
            r"(\"[^\"]{0,4096}+\"|'[^']{0,4096}+'|[^\s,&}]++)"
        ),
        r"\1[REDACTED]",
    ),
    (
        re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]++\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+"),
        "[REDACTED_JWT]",
    ),
    # OAuth query parameters (callback URLs): the authorization code, state and PKCE verifier.
    (re.compile(r"(?i)((?:^|[?&])(?:code|state|code_verifier)=)[^&\s]*+"), r"\1[REDACTED]"),
]
#: Longest request text (path, query, user agent, forwarded-for) a log line carries: the rest
#: is cut before redaction, so a client's 8 KB URL costs the log 8 KB of nothing.
MAX_LOGGED_TEXT = 256
RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}
REDACTED = "[REDACTED]"


def redact_text(text: str) -> str:
    for pattern, replacement in SENSITIVE_TEXT:
        text = pattern.sub(replacement, text)
    return text


def clip(text: str | None, limit: int = MAX_LOGGED_TEXT) -> str | None:
    """``text`` cut to ``limit`` characters, saying how much was cut; None stays None."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more]"


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
    """Development's readable lines; the structured extras (the access line's method, path,
    status...) follow the message as ``key=value``, as the JSON lines carry them as keys."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        extras = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in RESERVED and value is not None
        ]
        return " ".join([line, *extras])

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return redact_text(super().formatException(ei))


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is now (test capture swaps it after start-up); in a
    ``flask ...`` command, to stderr, so that what the command prints (``clients create
    --json``) stays its own output: ``| jq`` must not meet a log line. A command's process
    (``to_stderr``, every thread: the mail thread too) or, in tests, the thread that runs one."""

    to_stderr = False

    @property
    def stream(self) -> Any:
        if self.to_stderr or click.get_current_context(silent=True) is not None:
            return sys.stderr
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(level: str, fmt: str) -> None:
    """Install one stdout handler on the root logger (idempotent across app instances)."""
    handler = StdoutHandler()
    # the app is being built for a `flask ...` command: this whole process is that command
    handler.to_stderr = click.get_current_context(silent=True) is not None
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
