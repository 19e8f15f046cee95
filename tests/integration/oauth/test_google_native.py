"""Native apps: `POST /google/token` with an id_token, or with a code the app got with PKCE."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auth_microservice_app.identity import signin as auth_services
from auth_microservice_app.identity.challenges import MfaChallenge
from tests.integration.oauth.conftest import (
    CLIENT_ID,
    NATIVE_REDIRECT,
    OidcProvider,
    access_claims,
    native_code,
    provider_id_token,
)

pytestmark = pytest.mark.integration
TOKEN = "/api/v1/oauth/google/token"
VERIFIER = "native-app-verifier-" + "a" * 40


def test_id_token_issued_by_the_provider_signs_in(google_client, oidc_provider: OidcProvider):
    id_token = provider_id_token(oidc_provider, nonce="app-nonce-1")
    response = google_client.post(TOKEN, json={"id_token": id_token, "nonce": "app-nonce-1"})
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    claims = access_claims(response.json)
    assert claims["email"] == "vera@example.com"
    assert claims["amr"] == ["oauth"]


def test_id_token_with_another_nonce_is_refused(google_client, oidc_provider: OidcProvider):
    id_token = provider_id_token(oidc_provider, nonce="app-nonce-1")
    response = google_client.post(TOKEN, json={"id_token": id_token, "nonce": "app-nonce-2"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_invalid"


def test_code_and_verifier_from_the_app_sign_in(google_client, oidc_provider: OidcProvider):
    code = native_code(oidc_provider, verifier=VERIFIER, nonce="n-1", login="other")
    response = google_client.post(
        TOKEN,
        json={"code": code, "code_verifier": VERIFIER, "redirect_uri": NATIVE_REDIRECT},
    )
    assert response.status_code == 200, response.json
    assert access_claims(response.json)["email"] == "otto@example.com"


def test_code_with_the_wrong_verifier_is_refused_by_the_provider(
    google_client, oidc_provider: OidcProvider
):
    code = native_code(oidc_provider, verifier=VERIFIER, nonce="n-1")
    response = google_client.post(
        TOKEN,
        json={"code": code, "code_verifier": "b" * 60, "redirect_uri": NATIVE_REDIRECT},
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_token"


def test_code_with_a_nonce_checks_it(google_client, oidc_provider: OidcProvider):
    code = native_code(oidc_provider, verifier=VERIFIER, nonce="n-1")
    response = google_client.post(
        TOKEN,
        json={
            "code": code,
            "code_verifier": VERIFIER,
            "redirect_uri": NATIVE_REDIRECT,
            "nonce": "n-2",
        },
    )
    assert response.status_code == 401


def test_native_sign_in_passes_an_mfa_challenge_through(
    google_client, oidc_provider: OidcProvider, monkeypatch
):
    challenge = MfaChallenge(mfa_token="mfa-xyz", methods=["totp"])
    monkeypatch.setattr(auth_services, "sign_in", lambda user, client, *, amr: challenge)
    response = google_client.post(
        TOKEN, json={"id_token": oidc_provider.sign(oidc_provider.claims())}
    )
    assert response.status_code == 200
    assert response.json == {"mfa_required": True, "mfa_token": "mfa-xyz", "methods": ["totp"]}


# --- id_token verification -------------------------------------------------------------------


def b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def post_id_token(client, token: str) -> tuple[int, str]:
    response = client.post(TOKEN, json={"id_token": token})
    code = response.json["error"]["code"] if response.status_code != 200 else ""
    return response.status_code, code


def test_forged_token_with_the_provider_style_claims_signs_in(google_client, oidc_provider):
    # the control case for the refusals below: the provider's key, the right claims
    assert post_id_token(google_client, oidc_provider.sign(oidc_provider.claims()))[0] == 200


def test_token_signed_by_another_key_is_refused(google_client, oidc_provider):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = oidc_provider.sign(oidc_provider.claims(), key=other)  # same kid, wrong key
    assert post_id_token(google_client, token) == (401, "token_invalid")


def test_token_with_an_unknown_kid_is_refused(google_client, oidc_provider):
    token = oidc_provider.sign(oidc_provider.claims(), kid="not-a-provider-key")
    assert post_id_token(google_client, token) == (401, "token_invalid")


def test_token_with_a_tampered_payload_is_refused(google_client, oidc_provider):
    header, _payload, signature = oidc_provider.sign(oidc_provider.claims()).split(".")
    forged = jwt.encode(oidc_provider.claims(sub="other"), "k" * 32, algorithm="HS256")
    token = ".".join([header, forged.split(".")[1], signature])
    assert post_id_token(google_client, token) == (401, "token_invalid")


def test_hs256_token_keyed_with_the_public_key_is_refused(google_client, oidc_provider):
    # the classic algorithm confusion: HMAC with the provider's public key as the secret
    public_pem = oidc_provider.signing_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": oidc_provider.kid}
    signing_input = f"{b64(header)}.{b64(oidc_provider.claims())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    assert post_id_token(google_client, token) == (401, "token_invalid")


def test_es256_token_is_refused_when_the_provider_signs_rs256(google_client, oidc_provider):
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(
        oidc_provider.claims(), key, algorithm="ES256", headers={"kid": oidc_provider.kid}
    )
    assert post_id_token(google_client, token) == (401, "token_invalid")


def test_unsigned_token_is_refused(google_client, oidc_provider):
    token = jwt.encode(oidc_provider.claims(), None, algorithm="none")
    assert post_id_token(google_client, token) == (401, "token_invalid")


def test_wrong_audience_is_refused(google_client, oidc_provider):
    token = oidc_provider.sign(oidc_provider.claims(aud="someone-elses-client"))
    assert post_id_token(google_client, token) == (401, "token_invalid")


def test_extra_audience_of_a_native_client_is_accepted(google_client, oidc_provider):
    token = oidc_provider.sign(oidc_provider.claims(aud="ios-app-client-id"))
    assert post_id_token(google_client, token)[0] == 200


def test_foreign_authorized_party_is_refused(google_client, oidc_provider):
    token = oidc_provider.sign(oidc_provider.claims(aud=[CLIENT_ID, "x"], azp="x"))
    assert post_id_token(google_client, token) == (401, "token_invalid")


def test_wrong_issuer_is_refused(google_client, oidc_provider):
    token = oidc_provider.sign(oidc_provider.claims(iss="https://accounts.google.com"))
    assert post_id_token(google_client, token) == (401, "token_invalid")


def test_expired_token_is_refused(google_client, oidc_provider):
    now = int(time.time())
    token = oidc_provider.sign(oidc_provider.claims(iat=now - 7200, exp=now - 3600))
    assert post_id_token(google_client, token) == (401, "token_expired")


def test_token_without_exp_is_refused(google_client, oidc_provider):
    token = oidc_provider.sign(oidc_provider.claims(exp=None))
    assert post_id_token(google_client, token) == (401, "token_invalid")


def test_garbage_is_refused(google_client):
    assert post_id_token(google_client, "not.a.jwt") == (401, "token_invalid")


# --- the request body ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": "c"},
        {"code": "c", "code_verifier": VERIFIER},
        {"id_token": "t", "code": "c"},
        {"code": "c", "code_verifier": "short", "redirect_uri": NATIVE_REDIRECT},
        {"id_token": "t", "extra": 1},
    ],
)
def test_malformed_bodies_are_422(google_client, body):
    response = google_client.post(TOKEN, json=body)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
