"""OAuth sign-in respects 2FA: `/exchange` and `/token` answer the MFA challenge unchanged."""

from __future__ import annotations

import pyotp
import pytest

from tests.integration.oauth.conftest import GoogleFlow, OidcProvider, access_claims, bearer

pytestmark = pytest.mark.integration


def enable_two_factor(client, access_token: str) -> list[str]:
    setup = client.post("/api/v1/2fa/setup", headers=bearer(access_token))
    assert setup.status_code == 200, setup.json
    code = pyotp.TOTP(setup.json["secret"]).now()
    enabled = client.post("/api/v1/2fa/enable", json={"code": code}, headers=bearer(access_token))
    assert enabled.status_code == 200, enabled.json
    return list(enabled.json["backup_codes"])


def test_oauth_user_with_two_factor_gets_the_challenge(google_flow: GoogleFlow):
    backup_codes = enable_two_factor(google_flow.client, google_flow.sign_in()["access_token"])
    answer = google_flow.client_redirect("verified")
    response = google_flow.exchange(answer["code"])
    assert response.status_code == 200
    assert response.json["mfa_required"] is True
    assert "access_token" not in response.json
    verified = google_flow.client.post(
        "/api/v1/2fa/verify",
        json={"mfa_token": response.json["mfa_token"], "code": backup_codes[0]},
    )
    assert verified.status_code == 200, verified.json
    assert "oauth" in access_claims(verified.json)["amr"]


def test_native_sign_in_with_two_factor_gets_the_challenge(
    google_flow: GoogleFlow, oidc_provider: OidcProvider
):
    enable_two_factor(google_flow.client, google_flow.sign_in()["access_token"])
    response = google_flow.client.post(
        "/api/v1/oauth/google/token", json={"id_token": oidc_provider.sign(oidc_provider.claims())}
    )
    assert response.status_code == 200
    assert response.json["mfa_required"] is True
    assert set(response.json) == {"mfa_required", "mfa_token", "methods"}


def refreshed(client, pair: dict) -> str:
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def test_an_account_without_a_password_turns_2fa_off_with_a_fresh_sign_in_and_a_code(
    google_flow: GoogleFlow,
):
    client = google_flow.client
    first = google_flow.sign_in()
    backup_codes = enable_two_factor(client, first["access_token"])
    challenge = google_flow.exchange(google_flow.client_redirect("verified")["code"]).json
    signed_in = client.post(
        "/api/v1/2fa/verify",
        json={"mfa_token": challenge["mfa_token"], "code": backup_codes[0]},
    ).json

    stale = client.post(
        "/api/v1/2fa/disable",
        json={"code": backup_codes[1]},
        headers=bearer(refreshed(client, signed_in)),
    )
    assert stale.status_code == 401
    assert stale.json["error"]["code"] == "fresh_token_required"
    # a password the account does not have is wrong, as before
    guessed = client.post(
        "/api/v1/2fa/disable",
        json={"code": backup_codes[1], "password": "anything at all"},
        headers=bearer(signed_in["access_token"]),
    )
    assert guessed.status_code == 401
    assert guessed.json["error"]["code"] == "invalid_credentials"

    fresh = client.post(
        "/api/v1/2fa/disable",
        json={"code": backup_codes[1]},
        headers=bearer(signed_in["access_token"]),
    )
    assert fresh.status_code == 200, fresh.json
    status = client.get("/api/v1/2fa/status", headers=bearer(signed_in["access_token"]))
    assert status.json["enabled"] is False
