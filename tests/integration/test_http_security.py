"""CORS answers and security headers, in testing and in production configuration."""

from __future__ import annotations

import contextlib

import pytest

from auth_microservice_app import create_app
from auth_microservice_app.config import ConfigError
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, make_app

pytestmark = pytest.mark.integration
ALLOWED = "https://app.example.com"
REFUSED = "https://evil.example.net"


@pytest.fixture
def cors_client(app, signing_key_pem):
    return make_app(
        signing_key_pem, CORS_ORIGINS=[ALLOWED, "https://admin.example.com"]
    ).test_client()


def preflight(client, origin: str):
    return client.options(
        "/api/v1/auth/login",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type, X-Request-ID",
        },
    )


def test_preflight_from_an_allowed_origin(cors_client):
    response = preflight(cors_client, ALLOWED)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "x-request-id"} <= {
        h.strip() for h in allowed_headers.split(",")
    }
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in response.headers["Vary"]


def test_preflight_from_a_refused_origin_gets_no_cors_headers(cors_client):
    response = preflight(cors_client, REFUSED)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_simple_request_echoes_only_allowed_origins(cors_client):
    allowed = cors_client.get("/.well-known/jwks.json", headers={"Origin": ALLOWED})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    refused = cors_client.get("/.well-known/jwks.json", headers={"Origin": REFUSED})
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_a_request_without_origin_gets_no_cors_headers_but_varies_on_origin(cors_client):
    for path in ("/.well-known/jwks.json", "/api/v1/auth/me"):
        response = cors_client.get(path)
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Credentials" not in response.headers
        # a shared cache must not hand this answer to a browser's CORS request
        assert "Origin" in response.headers["Vary"]
    assert "Origin" not in cors_client.get("/health/live").headers.get("Vary", "")


def test_wildcard_origin_is_refused_at_start_up(signing_key_pem):
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        make_app(signing_key_pem, CORS_ORIGINS=["*"])


def test_api_security_headers_in_testing(client):
    response = client.get("/api/v1/auth/me")
    assert (
        response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers


def test_docs_paths_get_their_own_looser_csp(client):
    response = client.get("/apidocs/")
    assert "'unsafe-inline'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    api = client.get("/api/v1/auth/me")
    assert "unsafe-inline" not in api.headers["Content-Security-Policy"]


@pytest.fixture
def production_client(app, signing_key_pem):
    production = create_app(
        "production",
        SECRET_KEY="p" * 48,
        SQLALCHEMY_DATABASE_URI=TEST_DATABASE_URL,
        DATABASE_URL=TEST_DATABASE_URL,
        REDIS_URL=TEST_REDIS_URL,
        JWT_PRIVATE_KEY=signing_key_pem,
        TOTP_ENCRYPTION_KEYS="k1:" + "a" * 44,
        RATELIMIT_ENABLED=False,
        EMAIL_BACKEND="file",
        METRICS_TOKEN="metrics-token-for-the-test",
        JWT_ISSUER="https://auth.test",
        FRONTEND_URL="https://app.test",
        CORS_ORIGINS=["https://app.test"],
        # no broker in this test: emails would be sent from the web process, on purpose
        EMAIL_DELIVERY_IN_PROCESS=True,
    )
    return production.test_client()


def test_production_forces_https_and_sends_hsts(production_client):
    plain = production_client.get("/api/v1/auth/me")
    assert plain.status_code in (301, 302)
    assert plain.headers["Location"].startswith("https://")
    proxied = production_client.get("/api/v1/auth/me", headers={"X-Forwarded-Proto": "https"})
    assert proxied.status_code == 401
    assert proxied.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert proxied.headers["X-Frame-Options"] == "DENY"
    assert (
        proxied.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


def test_production_probes_answer_plain_http(production_client):
    assert production_client.get("/health/live").status_code == 200
    assert production_client.get("/health").status_code == 200


SECURITY_HEADERS = (
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Permissions-Policy",
)


def _stock_talisman_headers(app, path: str, headers: dict[str, str]) -> dict[str, str | None]:
    """What unmodified Flask-Talisman, with the app's own settings, sets for this request."""
    from flask import Response
    from flask_talisman import Talisman
    from werkzeug.exceptions import HTTPException

    mine = app.extensions["talisman"]
    with app.test_request_context(path, headers=headers):
        from flask import request

        with contextlib.suppress(HTTPException):  # 404/405: no endpoint, Talisman's defaults
            request.url_rule, request.view_args = app.url_map.bind_to_environ(
                request.environ
            ).match(return_rule=True)
        response = Response()
        Talisman._set_response_headers(mine, response)
        return {name: response.headers.get(name) for name in SECURITY_HEADERS}


@pytest.mark.parametrize(
    "path",
    # /login by GET is a 405: a response without an endpoint
    ["/api/v1/auth/me", "/.well-known/jwks.json", "/health/live", "/api/v1/auth/login"],
)
def test_cached_security_headers_equal_stock_talismans(production_client, path):
    app = production_client.application
    # https, plain, https again on one app: the cache must keep the two apart (HSTS)
    for https in (True, False, True, False):
        headers = {"X-Forwarded-Proto": "https"} if https else {}
        response = production_client.get(path, headers=headers)
        if response.status_code in (301, 302):
            assert not https
            continue
        got = {name: response.headers.get(name) for name in SECURITY_HEADERS}
        assert got == _stock_talisman_headers(app, path, headers)
        assert all(len(response.headers.getlist(name)) <= 1 for name in SECURITY_HEADERS)
        assert got["Content-Security-Policy"]
        assert (got["Strict-Transport-Security"] is not None) == https


def test_there_is_no_cookie_session(client):
    from flask import session

    with (
        client.application.test_request_context("/api/v1/auth/me"),
        pytest.raises(RuntimeError, match="session is unavailable"),
    ):
        session["user"] = "someone"
    response = client.get("/api/v1/auth/me")
    assert "Set-Cookie" not in response.headers
