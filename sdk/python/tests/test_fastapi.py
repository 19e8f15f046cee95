"""auth_service_client.fastapi: RequireAuth as a dependency, same statuses and headers.

No `from __future__ import annotations`: FastAPI must resolve the Depends() of local views.
"""

from typing import Annotated

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx2")

from auth_service_client import Claims, Verifier  # noqa: E402
from auth_service_client.fastapi import RequireAuth, install_error_handler  # noqa: E402
from fastapi import Depends, FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from issuer_stub import StubIssuer  # noqa: E402


def make_app(verifier: Verifier, *, flat_errors: bool) -> FastAPI:
    app = FastAPI()
    if flat_errors:
        install_error_handler(app)
    signed_in = RequireAuth(verifier)
    admin = RequireAuth(verifier, roles=["admin"])
    reader = RequireAuth(verifier, scopes=["orders:read"])
    fresh = RequireAuth(verifier, fresh=True)

    @app.get("/me")
    def me(claims: Annotated[Claims, Depends(signed_in)]) -> dict[str, str]:
        return {"sub": claims.subject}

    @app.get("/admin")
    def admin_view(claims: Annotated[Claims, Depends(admin)]) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/orders")
    def orders(claims: Annotated[Claims, Depends(reader)]) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/danger")
    def danger(claims: Annotated[Claims, Depends(fresh)]) -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.fixture
def client(verifier: Verifier) -> TestClient:
    return TestClient(make_app(verifier, flat_errors=True))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_gives_the_claims(issuer: StubIssuer, client: TestClient) -> None:
    response = client.get("/me", headers=bearer(issuer.sign()))
    assert response.status_code == 200 and response.json() == {"sub": "user-42"}


def test_no_token_is_401_bearer(client: TestClient) -> None:
    response = client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"


def test_an_invalid_token_is_401_invalid_token(client: TestClient) -> None:
    response = client.get("/me", headers=bearer("x.y.z"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert response.json()["error"] == "invalid_token"


def test_missing_role_or_scope_is_403(issuer: StubIssuer, client: TestClient) -> None:
    for path, token in [
        ("/admin", issuer.sign(roles=["user"])),
        ("/orders", issuer.sign(scope="orders:write")),
    ]:
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 403
        assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert client.get("/orders", headers=bearer(issuer.sign(scope="orders:read"))).is_success


def test_not_fresh_is_401(issuer: StubIssuer, client: TestClient) -> None:
    response = client.post("/danger", headers=bearer(issuer.sign(fresh=False)))
    assert response.status_code == 401 and "fresh" in response.json()["error_description"]


def test_issuer_down_is_503_with_retry_after(issuer: StubIssuer, client: TestClient) -> None:
    issuer.failing.update(
        {"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}
    )
    response = client.get("/me", headers=bearer(issuer.sign()))
    assert response.status_code == 503 and response.headers["retry-after"] == "30"


def test_without_the_handler_the_error_object_is_under_detail(
    issuer: StubIssuer, verifier: Verifier
) -> None:
    client = TestClient(make_app(verifier, flat_errors=False))
    response = client.get("/me", headers=bearer("x.y.z"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert response.json()["detail"]["error"] == "invalid_token"
