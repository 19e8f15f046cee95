"""Rate limits per endpoint, per client IP and per target account (Flask-Limiter, moving window).

One Limiter per app (Flask-Limiter keeps its storage on the instance, and tests build several
apps). Limits are attached to the app's own view functions after the blueprints are registered,
so the table below is the single place that says what is limited, by what, and how much.
When Redis is down, Flask-Limiter counts in process memory instead (never a 500).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from ..auth import events
from ..auth.validators import email_key

KeyFunc = Callable[[], str]


def client_ip() -> str:
    # ProxyFix (TRUSTED_PROXIES) has already replaced remote_addr when proxies are trusted;
    # a raw X-Forwarded-For is never read here.
    return f"ip:{get_remote_address()}"


def _body_field(name: str) -> str:
    data = request.get_json(silent=True, cache=True)
    value = data.get(name) if isinstance(data, dict) else None
    return value.strip() if isinstance(value, str) else ""


def _hashed(prefix: str, value: str) -> str:
    return prefix + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def account_from_email() -> str:
    """The account the request targets, hashed: emails never become Redis keys.

    Keyed on :func:`..auth.validators.email_key`, the same normalisation as the account lookup,
    so no other spelling of one address (letter case, full-width letters, ``。``) buys a
    fresh budget.
    """
    email = _body_field("email")
    return _hashed("acct:", email_key(email)) if email else client_ip()


def account_from_mfa_token() -> str:
    token = _body_field("mfa_token")
    return _hashed("mfa:", token) if token else client_ip()


def _limit(setting: str) -> Callable[[], str]:
    return lambda: str(current_app.config[setting])


#: endpoint -> [(setting, key function)]: every limit the service enforces beyond the default.
_EMAIL = [("RATELIMIT_EMAIL", client_ip), ("RATELIMIT_EMAIL", account_from_email)]
ENDPOINT_LIMITS: dict[str, list[tuple[str, KeyFunc]]] = {
    "auth.login": [("RATELIMIT_LOGIN", client_ip), ("RATELIMIT_LOGIN", account_from_email)],
    "auth.register": [("RATELIMIT_REGISTER", client_ip)],
    "auth.refresh": [("RATELIMIT_REFRESH", client_ip)],
    "auth.verify_email_resend": _EMAIL,
    "auth.password_forgot": _EMAIL,
    "auth.magic_link": _EMAIL,
    # one-time codes and provider tokens are guessed or replayed at these three
    "oauth.exchange": [("RATELIMIT_LOGIN", client_ip)],
    "oauth.link_confirm": [("RATELIMIT_LOGIN", client_ip)],
    "oauth.native_token": [("RATELIMIT_LOGIN", client_ip)],
    # each starts a flow that Redis keeps for OAUTH_STATE_TTL: a tight budget per IP
    "oauth.authorize": [("RATELIMIT_OAUTH_AUTHORIZE", client_ip)],
    "oauth.link": [("RATELIMIT_OAUTH_AUTHORIZE", client_ip)],
    "two_factor.verify": [("RATELIMIT_2FA", client_ip), ("RATELIMIT_2FA", account_from_mfa_token)],
    # a megabyte-sized document (served from memory, but bandwidth is shared)
    "flasgger.apispec": [("RATELIMIT_APISPEC", client_ip)],
}
#: Paths that other services and probes call often and that hold nothing to guess; Swagger
#: UI's page and static files (the document it loads, /apispec.json, is limited above).
EXEMPT_PREFIXES = (
    "/health",
    "/metrics",
    "/.well-known/",
    "/apidocs",
    "/flasgger_static",
)


def _on_breach(limit: RequestLimit) -> None:
    g.rate_limited = True
    events.record("rate_limited", endpoint=request.endpoint, limit=str(limit.limit))


def init_app(app: Flask) -> Limiter:
    """Create this app's limiter and attach the endpoint limits (call after the blueprints)."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    limiter = Limiter(
        key_func=client_ip,
        app=None,
        default_limits=[_limit("RATELIMIT_DEFAULT")],
        default_limits_exempt_when=lambda: request.path.startswith(EXEMPT_PREFIXES),
        strategy="moving-window",
        headers_enabled=True,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        storage_options={"socket_timeout": app.config["REDIS_SOCKET_TIMEOUT"]}
        if app.config["RATELIMIT_STORAGE_URI"].startswith("redis")
        else {},
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        key_prefix="auth:rl",
        on_breach=_on_breach,
        enabled=app.config["RATELIMIT_ENABLED"],
    )
    limiter.init_app(app)
    for endpoint, limits in ENDPOINT_LIMITS.items():
        view: Any = app.view_functions.get(endpoint)
        if view is None:
            continue
        for setting, key_func in limits:
            scope = f"{endpoint}:{setting}"
            view = limiter.limit(_limit(setting), key_func=key_func, scope=scope)(view)
        app.view_functions[endpoint] = view
    app.extensions["rate_limiter"] = limiter
    return limiter
