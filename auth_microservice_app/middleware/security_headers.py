"""Security headers (Flask-Talisman): a strict CSP for the JSON API, a looser one for Swagger UI.

One Talisman per app: it keeps its settings on the instance, and tests build apps with different
environments side by side.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_talisman import Talisman

API_CSP = {"default-src": "'none'", "frame-ancestors": "'none'"}
# Swagger UI runs inline scripts and styles; it gets them on its own paths only.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PREFIXES = ("/apidocs", "/flasgger_static")
#: Probes and scrapers talk plain HTTP inside the cluster; never redirect them.
PLAIN_HTTP_ENDPOINTS = ("health.live", "health.health", "prometheus_metrics")


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
    talisman = Talisman()
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
