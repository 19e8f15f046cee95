"""Offline verification by other services: JWKS, discovery, key rotation, algorithms."""

from __future__ import annotations

import jwt as pyjwt
import pytest

from auth_microservice_app.identity.tokens import ACCESS_TOKEN_CLAIMS
from auth_microservice_app.utils.keys import generate_private_key, private_key_pem, write_new_key
from tests.conftest import make_app

pytestmark = pytest.mark.integration


def verify_like_another_service(jwks: dict, token: str, issuer: str) -> dict:
    """What a resource server does with nothing but our JWKS and PyJWT."""
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = pyjwt.PyJWKSet.from_dict(jwks)[kid]
    return pyjwt.decode(
        token, key.key, algorithms=[key.algorithm_name], audience="auth-service", issuer=issuer
    )


def test_a_token_verifies_with_plain_pyjwt_against_the_jwks_alone(auth, client):
    tokens = auth.signup_and_login()
    jwks = client.get("/.well-known/jwks.json").json
    claims = verify_like_another_service(jwks, tokens["access_token"], "https://auth.test")
    assert claims["email"] == "alice@example.com"
    assert claims["type"] == "access"
    # a resource server checking aud never mistakes a refresh token for an access token
    with pytest.raises(pyjwt.InvalidAudienceError):
        verify_like_another_service(jwks, tokens["refresh_token"], "https://auth.test")


def test_jwks_is_public_cacheable_and_answers_304_to_its_etag(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age" in response.headers["Cache-Control"]
    keys = response.json["keys"]
    assert len(keys) == 1
    assert {"kty", "kid", "use", "alg", "n", "e"} <= set(keys[0])
    assert "d" not in keys[0] and "p" not in keys[0]
    etag = response.headers["ETag"]
    cached = client.get("/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.data == b""


def test_openid_configuration_points_at_the_jwks(client):
    body = client.get("/.well-known/openid-configuration").json
    assert body["issuer"] == "https://auth.test"
    assert body["jwks_uri"] == "https://auth.test/.well-known/jwks.json"
    # no id_token is issued, so no id_token_* field; the token endpoint is the real one
    assert "id_token_signing_alg_values_supported" not in body
    assert body["token_endpoint"] == "https://auth.test/oauth2/token"
    assert body["claims_supported"] == list(ACCESS_TOKEN_CLAIMS)


def test_key_rotation_keeps_old_tokens_valid_and_lists_both_keys(signing_key_pem, tmp_path, auth):
    keys_dir = tmp_path / "keys"
    write_new_key(keys_dir, "RS256")
    before = make_app(signing_key_pem, JWT_PRIVATE_KEY=None, JWT_KEYS_DIR=str(keys_dir))
    auth.client = before.test_client()
    old_tokens = auth.signup_and_login()
    old_kid = pyjwt.get_unverified_header(old_tokens["access_token"])["kid"]

    result = before.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    after = make_app(signing_key_pem, JWT_PRIVATE_KEY=None, JWT_KEYS_DIR=str(keys_dir))  # a restart
    client = after.test_client()
    jwks = client.get("/.well-known/jwks.json").json
    kids = [key["kid"] for key in jwks["keys"]]
    assert len(kids) == 2 and old_kid in kids

    assert (
        client.get("/api/v1/auth/me", headers=auth.bearer(old_tokens["access_token"])).status_code
        == 200
    )
    refreshed = client.post(
        "/api/v1/auth/refresh", headers=auth.bearer(old_tokens["refresh_token"])
    ).json
    new_kid = pyjwt.get_unverified_header(refreshed["access_token"])["kid"]
    assert new_kid != old_kid and new_kid in kids
    verify_like_another_service(jwks, old_tokens["access_token"], "https://auth.test")
    verify_like_another_service(jwks, refreshed["access_token"], "https://auth.test")


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_other_algorithms_sign_and_verify_end_to_end(signing_key_pem, auth, algorithm):
    pem = private_key_pem(generate_private_key(algorithm)).decode()
    app = make_app(signing_key_pem, JWT_ALGORITHM=algorithm, JWT_PRIVATE_KEY=pem)
    auth.client = app.test_client()
    tokens = auth.signup_and_login()
    assert pyjwt.get_unverified_header(tokens["access_token"])["alg"] == algorithm
    assert (
        auth.client.get("/api/v1/auth/me", headers=auth.bearer(tokens["access_token"])).status_code
        == 200
    )
    jwks = auth.client.get("/.well-known/jwks.json").json
    assert (
        verify_like_another_service(jwks, tokens["access_token"], "https://auth.test")["type"]
        == "access"
    )
    assert (
        auth.client.post(
            "/api/v1/auth/refresh", headers=auth.bearer(tokens["refresh_token"])
        ).status_code
        == 200
    )
