"""Changing how an account signs in needs a fresh sign-in, not a token kept alive by refresh."""

from __future__ import annotations

import pytest

from tests.conftest import make_app

pytestmark = pytest.mark.integration


def refreshed_access_token(client, tokens) -> str:
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200
    return str(response.json["access_token"])


@pytest.mark.parametrize("path", ["/api/v1/2fa/setup", "/api/v1/2fa/enable"])
def test_two_factor_enrolment_needs_a_fresh_token(auth, client, path):
    tokens = auth.signup_and_login(verified=True)
    stale = refreshed_access_token(client, tokens)
    response = client.post(
        path,
        json={"code": "123456"} if path.endswith("enable") else None,
        headers=auth.bearer(stale),
    )
    assert response.status_code == 401
    assert response.json["error"]["code"] == "fresh_token_required"
    fresh = client.post("/api/v1/2fa/setup", headers=auth.bearer(tokens["access_token"]))
    assert fresh.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/oauth/google/link"), ("DELETE", "/api/v1/oauth/google")]
)
def test_linking_and_unlinking_a_provider_need_a_fresh_token(
    app, signing_key_pem, auth, method, path
):
    client = make_app(
        signing_key_pem,
        GOOGLE_CLIENT_ID="web-client",
        GOOGLE_CLIENT_SECRET="s",
        OAUTH_REDIRECT_ALLOWLIST=["https://app.test/done"],
    ).test_client()
    auth.client = client
    stale = refreshed_access_token(client, auth.signup_and_login())
    response = client.open(
        path,
        method=method,
        json={"redirect_uri": "https://app.test/done"},
        headers=auth.bearer(stale),
    )
    assert response.status_code == 401
    assert response.json["error"]["code"] == "fresh_token_required"
