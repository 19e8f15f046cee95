"""Token verification: claims, headers, forgeries and type confusion all end in the envelope."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization

from auth_microservice_app.identity import tokens as token_kernel
from auth_microservice_app.utils.keys import generate_private_key

pytestmark = pytest.mark.integration
ME = "/api/v1/auth/me"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict, dict]:
    header, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(
        base64.urlsafe_b64decode(pad(payload))
    )


def assert_401(response, code: str) -> None:
    assert response.status_code == 401, response.json
    assert response.json["error"]["code"] == code


def test_access_token_has_every_documented_claim_and_header(app, auth):
    tokens = auth.signup_and_login()
    header, claims = parts(tokens["access_token"])
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert header["kid"] == app.extensions["jwt_keys"].signing.kid
    assert set(token_kernel.ACCESS_TOKEN_CLAIMS) <= set(claims)  # openid-configuration lists them
    assert claims["type"] == "access"
    assert claims["iss"] == "https://auth.test"
    assert claims["aud"] == "auth-service"
    assert claims["exp"] - claims["iat"] == 900
    assert claims["fresh"] is True
    assert claims["amr"] == ["pwd"]
    assert claims["email"] == "alice@example.com"
    _, refresh_claims = parts(tokens["refresh_token"])
    assert refresh_claims["type"] == "refresh"
    assert refresh_claims["sid"] == claims["sid"]
    assert refresh_claims["exp"] - refresh_claims["iat"] == 30 * 24 * 3600


def test_missing_token_is_authorization_required(client):
    assert_401(client.get(ME), "authorization_required")


@pytest.mark.parametrize(
    "garbage",
    [
        "not.a.jwt",
        "no-dots-at-all",
        "...",
        b64(b"[1, 2]") + ".e30.",  # a header that is JSON but not an object
        b64(b"\xff\xfe") + ".e30.",  # not UTF-8
        "!!!!.e30.",  # not base64url
        b64(b'{"alg": "RS256", "kid": 7}') + ".e30.",  # a kid that is no string
    ],
)
def test_garbage_token_is_token_invalid(auth, client, garbage):
    assert_401(client.get(ME, headers=auth.bearer(garbage)), "token_invalid")


def test_valid_header_with_a_mangled_payload_is_token_invalid(auth, client):
    """The header alone picks the key; PyJWT still checks every segment strictly."""
    tokens = auth.signup_and_login()
    header, payload, signature = tokens["access_token"].split(".")
    for mangled in (f"{header}.{payload}!.{signature}", f"{header}.{payload}.{signature}.extra"):
        assert_401(client.get(ME, headers=auth.bearer(mangled)), "token_invalid")


def test_tampered_payload_is_token_invalid(auth, client):
    tokens = auth.signup_and_login()
    header, payload, signature = tokens["access_token"].split(".")
    _, claims = parts(tokens["access_token"])
    claims["roles"] = ["admin"]
    forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    assert_401(client.get(ME, headers=auth.bearer(forged)), "token_invalid")


def test_alg_none_is_token_invalid(app, auth, client):
    tokens = auth.signup_and_login()
    _, claims = parts(tokens["access_token"])
    header = {"alg": "none", "typ": "at+jwt", "kid": app.extensions["jwt_keys"].signing.kid}
    forged = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."
    assert_401(client.get(ME, headers=auth.bearer(forged)), "token_invalid")


def test_hs256_signed_with_the_public_key_is_token_invalid(app, auth, client):
    tokens = auth.signup_and_login()
    _, claims = parts(tokens["access_token"])
    ring = app.extensions["jwt_keys"]
    public_pem = ring.signing.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": ring.signing.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert_401(
        client.get(ME, headers=auth.bearer(f"{signing_input}.{b64(signature)}")), "token_invalid"
    )


def test_unknown_kid_is_token_invalid(auth, client):
    tokens = auth.signup_and_login()
    _, claims = parts(tokens["access_token"])
    stranger = generate_private_key("RS256")
    forged = pyjwt.encode(
        claims, stranger, algorithm="RS256", headers={"kid": "someone-else", "typ": "at+jwt"}
    )
    assert_401(client.get(ME, headers=auth.bearer(forged)), "token_invalid")


def test_token_signed_by_a_stranger_with_our_kid_is_token_invalid(app, auth, client):
    tokens = auth.signup_and_login()
    _, claims = parts(tokens["access_token"])
    stranger = generate_private_key("RS256")
    headers = {"kid": app.extensions["jwt_keys"].signing.kid, "typ": "at+jwt"}
    forged = pyjwt.encode(claims, stranger, algorithm="RS256", headers=headers)
    assert_401(client.get(ME, headers=auth.bearer(forged)), "token_invalid")


def test_refresh_token_is_refused_where_an_access_token_is_needed(auth, client):
    tokens = auth.signup_and_login()
    assert_401(client.get(ME, headers=auth.bearer(tokens["refresh_token"])), "token_invalid")


def test_access_token_is_refused_for_refresh(auth, client):
    tokens = auth.signup_and_login()
    response = client.post("/api/v1/auth/refresh", headers=auth.bearer(tokens["access_token"]))
    assert_401(response, "token_invalid")
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert_401(response, "token_invalid")


def test_wrong_audience_or_issuer_is_token_invalid(app, auth, client):
    tokens = auth.signup_and_login()
    _, claims = parts(tokens["access_token"])
    key = app.extensions["jwt_keys"].signing
    headers = {"kid": key.kid, "typ": "at+jwt"}
    for change in ({"aud": "another-service"}, {"iss": "https://evil.example"}):
        forged = pyjwt.encode(
            {**claims, **change}, key.private_key, algorithm="RS256", headers=headers
        )
        assert_401(client.get(ME, headers=auth.bearer(forged)), "token_invalid")


def test_expired_access_token_is_token_expired(app, auth, client):
    tokens = auth.signup_and_login()
    _, claims = parts(tokens["access_token"])
    with app.app_context():
        old = token_kernel.TokenClaims(
            subject=claims["sub"],
            session_id=claims["sid"],
            jti="old-jti",
            issued_at=token_kernel.now() - timedelta(hours=1),
            email=claims["email"],
            email_verified=False,
            roles=["user"],
            amr=["pwd"],
        )
        expired = token_kernel.encode_access(old)
    assert_401(client.get(ME, headers=auth.bearer(expired)), "token_expired")


def test_access_token_without_the_at_jwt_type_header_is_refused(app, auth, client):
    tokens = auth.signup_and_login()
    _, claims = parts(tokens["access_token"])
    key = app.extensions["jwt_keys"].signing
    forged = pyjwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    assert_401(client.get(ME, headers=auth.bearer(forged)), "token_invalid")
