"""Security headers (Flask-Talisman): a strict CSP for the JSON API, a looser one for Swagger UI.

One Talisman per app: it keeps its settings on the instance, and tests build apps with different
environments side by side.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask import Flask, Response, request
from flask_talisman import Talisman
from werkzeug.datastructures import Headers

API_CSP = {"default-src": "'none'", "frame-ancestors": "'none'"}
# Swagger UI runs inline scripts and styles; it gets them on its own paths only.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PREFIXES = ("/apidocs", "/flasgger_static")
#: Probes and scrapers talk plain HTTP inside the cluster; never redirect them.
PLAIN_HTTP_ENDPOINTS = ("health.live", "health.health", "prometheus_metrics")


class CachedTalisman(Talisman):
    """Talisman that works out each endpoint's headers once instead of on every response.

    Stock Talisman rebuilds the same strings per response (view-option lookups, CSP parsing)
    and looks the view's options up again to decide on HTTPS: with the rest of the hooks,
    measurably more than the JSON endpoint itself. Without CSP nonces (this service sets none)
    the headers depend only on the endpoint's options and on whether the request arrived over
    HTTPS (HSTS), so they are computed by Talisman itself, once per (endpoint, https), and
    replayed. ``tests/integration/test_http_security.py`` compares them with stock Talisman.
    """

    def init_app(self, app: Flask, **options: Any) -> None:
        super().init_app(app, **options)
        self._cache: dict[tuple[str | None, bool], tuple[tuple[str, str], ...]] = {}

    def _force_https(self) -> Response | None:
        if _over_https():
            return None  # what Talisman concludes too, without its option lookups
        response: Response | None = super()._force_https()
        return response

    def _make_nonce(self) -> None:
        if self.content_security_policy_nonce_in:
            super()._make_nonce()

    def _set_response_headers(self, response: Response) -> Response:
        if self.content_security_policy_nonce_in:  # a nonce differs per response: no cache
            return super()._set_response_headers(response)
        key = (request.endpoint, _over_https())
        headers = self._cache.get(key)
        if headers is None:
            probe = SimpleNamespace(headers=Headers())
            super()._set_response_headers(probe)
            headers = self._cache[key] = tuple(probe.headers.items())
        # Appended, not set one by one: no view sets these headers (Talisman owns them), and
        # setting would scan the response's headers once per name.
        response.headers.extend(headers)
        return response


def _over_https() -> bool:
    """Talisman's test (``request.is_secure`` or ``X-Forwarded-Proto: https``), on the environ."""
    environ = request.environ
    return (
        environ.get("wsgi.url_scheme") == "https"
        or environ.get("HTTP_X_FORWARDED_PROTO", "http") == "https"
    )


def _docs_csp(response: Response) -> Response:
    if request.path.startswith(DOCS_PREFIXES):
        response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


def init_app(app: Flask) -> None:
    """Call after the blueprints are registered (probe endpoints are exempted from HTTPS)."""
    # Registered before Talisman so that it runs after Talisman's own after_request hook.
    app.after_request(_docs_csp)
    for endpoint in PLAIN_HTTP_ENDPOINTS:
        view = app.view_functions.get(endpoint)
        if view is not None:
            setattr(view, "talisman_view_options", {"force_https": False})  # noqa: B010
    talisman = CachedTalisman()
    talisman.init_app(
        app,
        force_https=app.config["FORCE_HTTPS"],
        strict_transport_security=app.config["HSTS_ENABLED"],
        strict_transport_security_max_age=app.config["HSTS_MAX_AGE"],
        strict_transport_security_include_subdomains=True,
        session_cookie_secure=app.config["FORCE_HTTPS"],
        frame_options="DENY",
        referrer_policy="no-referrer",
        content_security_policy=API_CSP,
    )
    app.extensions["talisman"] = talisman
