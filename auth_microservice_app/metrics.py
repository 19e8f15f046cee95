"""Prometheus metrics: request metrics from prometheus-flask-exporter plus the auth events.

Naming follows Prometheus conventions: an ``auth_`` prefix, ``_total`` counters, units in names,
and only bounded label values (results, providers, kinds: never an email or a user id).

Under gunicorn with several workers set ``PROMETHEUS_MULTIPROC_DIR`` (before start): every
worker writes its samples there and ``/metrics`` sums them. ``METRICS_TOKEN`` closes ``/metrics``
to anyone without ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from .errors import error_response

HASH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class AuthMetrics:
    """The service's own counters; one instance per app (tests build several apps)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self.logins = counter("auth_logins_total", "Sign-in attempts by result.", ("result",))
        self.registrations = counter("auth_registrations_total", "Accounts created.", ("via",))
        self.token_refreshes = counter(
            "auth_token_refreshes_total", "Refresh-token uses by result.", ("result",)
        )
        self.refresh_reuse = counter(
            "auth_refresh_token_reuse_detections_total",
            "Spent refresh tokens presented again (the session is revoked).",
        )
        self.admin_actions = counter(
            "auth_admin_actions_total",
            "Changes made by administrators (API) and operators (CLI), by security event.",
            ("action",),
        )
        self.revocations = counter("auth_revocations_total", "Revocations by kind.", ("kind",))
        self.two_factor = counter(
            "auth_two_factor_events_total", "Two-factor events by kind.", ("event",)
        )
        self.oauth_sign_ins = counter(
            "auth_oauth_sign_ins_total",
            "OAuth sign-ins by provider and result.",
            ("provider", "result"),
        )
        self.emails = counter("auth_emails_total", "Emails by status.", ("status",))
        self.rate_limited = counter(
            "auth_rate_limited_total", "Requests refused by a rate limit.", ("endpoint",)
        )
        self.blocklist_fallback = counter(
            "auth_blocklist_database_fallback_total",
            "Revocation checks answered by the database because Redis was down or cold.",
        )
        self.password_hash = Histogram(
            "auth_password_hash_duration_seconds",
            "Time to hash or verify a password (argon2id).",
            ("operation",),
            buckets=HASH_BUCKETS,
            registry=registry,
        )
        self.login_unknown_over_budget = counter(
            "auth_login_unknown_over_budget_total",
            "Sign-ins to addresses without a password answered past LOGIN_UNKNOWN_BUDGET "
            "(no dummy verification).",
        )
        self.password_hash_busy = counter(
            "auth_password_hash_busy_total",
            "Hashes refused (503) because no hash thread was free within ARGON2_QUEUE_TIMEOUT.",
            ("operation",),
        )


def get() -> AuthMetrics:
    metrics: AuthMetrics = current_app.extensions["auth_metrics"]
    return metrics


def _protect(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        token = current_app.config.get("METRICS_TOKEN")
        if token:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                return error_response(401, "authorization_required", "A metrics token is required.")
        return view(*args, **kwargs)

    return guarded


def init_app(app: Flask) -> None:
    """Request metrics, the auth counters and ``/metrics`` (multiprocess under gunicorn)."""
    registry = CollectorRegistry(auto_describe=True)
    options: dict[str, Any] = {
        "group_by": "endpoint",  # bounded: /sessions/<id> is one series, not one per id
        "excluded_paths": ["^/metrics$", "^/health"],
        "metrics_decorator": _protect,
        "registry": registry,
    }
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir:
        # gunicorn.conf.py prepares it for the server; a CLI command (flask db upgrade) run
        # with the same environment must start too
        os.makedirs(multiproc_dir, exist_ok=True)
        # No auto_describe here: it would see series other workers already wrote and make the
        # exporter skip hooking this worker's request metrics (a silent DuplicateTimeseries).
        options["registry"] = registry = CollectorRegistry()
        exporter: PrometheusMetrics = GunicornInternalPrometheusMetrics(app, **options)
        # Samples live in the multiprocess directory; registering them here would count twice.
        app.extensions["auth_metrics"] = AuthMetrics(registry=None)
    else:
        exporter = PrometheusMetrics(app, **options)
        app.extensions["auth_metrics"] = AuthMetrics(registry=registry)
    # others register their own collectors here (mail.outbox: the backlog gauges)
    app.extensions["metrics_registry"] = registry
    app.extensions["prometheus_exporter"] = exporter
