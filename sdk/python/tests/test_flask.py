"""auth_service_client.flask: TokenAuth and require_auth, statuses and RFC 6750 headers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from auth_service_client import Verifier
from auth_service_client.flask import TokenAuth
from flask import Flask, g
from flask.testing import FlaskClient
from issuer_stub import AUDIENCE, FakeClock, StubIssuer


def make_app(auth: TokenAuth) -> Flask:
    app = Flask(__name__)

    @app.get("/me")
    @auth.require_auth()
    def me() -> dict[str, object]:
        return {"sub": g.auth.subject, "roles": sorted(g.auth.roles)}

    @app.get("/admin")
    @auth.require_auth(roles=["admin"])
    def admin() -> dict[str, object]:
        return {"ok": True}

    @app.get("/orders")
    @auth.require_auth(scopes=["orders:read", "orders:write"])
    def orders() -> dict[str, object]:
        return {"client": g.auth.client_id}

    @app.post("/danger")
    @auth.require_auth(fresh=True)
    def danger() -> dict[str, object]:
        return {"done": True}

    return app


@pytest.fixture
def client(verifier: Verifier) -> Iterator[FlaskClient]:
    app = make_app(TokenAuth(verifier=verifier))
    TokenAuth(app, verifier)  # the extension registered on the app
    with app.test_client() as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_reaches_the_view_with_g_auth(
    issuer: StubIssuer, client: FlaskClient
) -> None:
    response = client.get("/me", headers=bearer(issuer.sign()))
    assert response.status_code == 200
    assert response.json == {"sub": "user-42", "roles": ["user"]}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwdw=="}, bearer("")])
def test_no_bearer_token_is_401_with_a_bare_challenge(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json is not None and response.json["error"] == "unauthorized"


def test_an_invalid_token_is_401_invalid_token(client: FlaskClient) -> None:
    response = client.get("/me", headers=bearer("not.a.token"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert response.json is not None and response.json["error"] == "invalid_token"
    assert response.json["error_description"]


def test_an_expired_token_is_401_invalid_token(issuer: StubIssuer, client: FlaskClient) -> None:
    now = int(time.time())
    token = issuer.sign(iat=now - 1000, nbf=now - 1000, exp=now - 100)
    response = client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert 'error_description="the token has expired"' in response.headers["WWW-Authenticate"]


def test_a_missing_role_is_403_insufficient_scope(issuer: StubIssuer, client: FlaskClient) -> None:
    response = client.get("/admin", headers=bearer(issuer.sign(roles=["user"])))
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="insufficient_scope"')
    assert response.json is not None and response.json["error"] == "insufficient_scope"
    assert client.get("/admin", headers=bearer(issuer.sign(roles=["admin"]))).status_code == 200


def test_a_missing_scope_is_403_naming_the_scopes(issuer: StubIssuer, client: FlaskClient) -> None:
    token = issuer.sign(sub="svc", client_id="svc", scope="orders:read")
    response = client.get("/orders", headers=bearer(token))
    assert response.status_code == 403
    assert 'scope="orders:read orders:write"' in response.headers["WWW-Authenticate"]

    token = issuer.sign(sub="svc", client_id="svc", scope="orders:read orders:write")
    assert client.get("/orders", headers=bearer(token)).json == {"client": "svc"}


def test_fresh_required_and_not_fresh_is_401_with_a_description(
    issuer: StubIssuer, client: FlaskClient
) -> None:
    response = client.post("/danger", headers=bearer(issuer.sign(fresh=False)))
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"') and "fresh" in challenge
    assert response.json is not None and "fresh" in response.json["error_description"]
    assert client.post("/danger", headers=bearer(issuer.sign(fresh=True))).status_code == 200


def test_issuer_out_of_reach_is_503_with_retry_after(
    issuer: StubIssuer, client: FlaskClient
) -> None:
    issuer.failing.update({"/.well-known/oauth-authorization-server"})
    issuer.missing.add("/.well-known/openid-configuration")
    response = client.get("/me", headers=bearer(issuer.sign()))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "WWW-Authenticate" not in response.headers
    assert response.json is not None and response.json["error"] == "temporarily_unavailable"


def test_init_app_builds_the_verifier_from_config(issuer: StubIssuer) -> None:
    auth = TokenAuth()
    app = make_app(auth)
    app.config.update(AUTH_ISSUER=issuer.url, AUTH_AUDIENCE=AUDIENCE)
    auth.init_app(app)
    with app.test_client() as test_client:
        assert test_client.get("/me", headers=bearer(issuer.sign())).status_code == 200
        assert test_client.get("/me", headers=bearer(issuer.sign(aud="x"))).status_code == 401
    app.extensions["auth_service_client"].close()


def test_init_app_without_config_or_verifier_refuses() -> None:
    with pytest.raises(RuntimeError, match="AUTH_ISSUER"):
        TokenAuth(Flask(__name__))


def test_revocation_through_flask(issuer: StubIssuer, clock: FakeClock) -> None:
    from auth_service_client import ClientCredentials

    with (
        ClientCredentials(issuer.token_endpoint, "gateway", "g@te way") as gateway,
        Verifier(
            issuer.url, AUDIENCE, clock=clock, revocation="introspect", introspection_client=gateway
        ) as verifier,
    ):
        app = make_app(TokenAuth(verifier=verifier))
        TokenAuth(app, verifier)
        issuer.revoked.add("gone")
        response = app.test_client().get("/me", headers=bearer(issuer.sign(jti="gone")))
    assert response.status_code == 401
    assert "revoked" in response.headers["WWW-Authenticate"]
