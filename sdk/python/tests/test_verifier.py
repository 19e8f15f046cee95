"""Verifier: the token checks, against a local issuer."""

from __future__ import annotations

import time

import pytest
from auth_service_client import Claims, InvalidToken, TokenExpired, VerificationError, Verifier
from issuer_stub import AUDIENCE, SigningKey, StubIssuer, hmac_token, new_key, unsigned_token


def test_a_valid_token_gives_typed_claims(issuer: StubIssuer, verifier: Verifier) -> None:
    token = issuer.sign(roles=["user", "admin"], scope="orders:read orders:write")

    claims = verifier.verify(token)

    assert isinstance(claims, Claims)
    assert claims.subject == "user-42"
    assert claims.client_id == "first-party"
    assert claims.roles == {"user", "admin"}
    assert claims.scopes == {"orders:read", "orders:write"}
    assert claims.fresh is True
    assert claims.session_id == "session-7"
    assert claims.raw["email"] == "ada@example.com"
    assert claims["amr"] == ["pwd"]
    assert claims.has_roles("admin") and not claims.has_roles("admin", "root")
    assert claims.has_scopes("orders:read") and not claims.is_service


@pytest.mark.parametrize("key_fixture", ["rsa_key", "ec_key", "ed_key"])
def test_each_algorithm_of_the_contract_verifies(
    issuer: StubIssuer, verifier: Verifier, key_fixture: str, request: pytest.FixtureRequest
) -> None:
    key: SigningKey = request.getfixturevalue(key_fixture)
    assert verifier.verify(issuer.sign(key)).subject == "user-42"


def test_a_service_token_has_scopes_and_no_user_claims(
    issuer: StubIssuer, verifier: Verifier
) -> None:
    token = issuer.sign(
        sub="svc", client_id="svc", scope="orders:read", roles=None, email=None, fresh=None
    )

    claims = verifier.verify(token)

    assert claims.is_service and claims.scopes == {"orders:read"}
    assert claims.roles == frozenset() and claims.fresh is False


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_the_rfc_9068_typ_values_are_accepted(
    issuer: StubIssuer, verifier: Verifier, typ: str
) -> None:
    verifier.verify(issuer.sign(typ=typ))


@pytest.mark.parametrize("typ", [None, "JWT", "refresh+jwt", "at+jwt2"])
def test_another_typ_is_refused(issuer: StubIssuer, verifier: Verifier, typ: str | None) -> None:
    with pytest.raises(InvalidToken, match="typ"):
        verifier.verify(issuer.sign(typ=typ))


def test_an_expired_token_raises_token_expired(issuer: StubIssuer, verifier: Verifier) -> None:
    now = int(time.time())
    with pytest.raises(TokenExpired):
        verifier.verify(issuer.sign(iat=now - 1000, nbf=now - 1000, exp=now - 60))


def test_expiry_within_the_leeway_is_tolerated(issuer: StubIssuer, verifier: Verifier) -> None:
    now = int(time.time())
    verifier.verify(issuer.sign(iat=now - 1000, nbf=now - 1000, exp=now - 10))


def test_nbf_in_the_future_within_the_leeway_is_tolerated(
    issuer: StubIssuer, verifier: Verifier
) -> None:
    verifier.verify(issuer.sign(nbf=int(time.time()) + 10))


def test_nbf_beyond_the_leeway_is_refused_not_as_expired(
    issuer: StubIssuer, verifier: Verifier
) -> None:
    with pytest.raises(InvalidToken, match="not valid yet") as caught:
        verifier.verify(issuer.sign(nbf=int(time.time()) + 120))
    assert not isinstance(caught.value, TokenExpired)


def test_leeway_is_configurable(issuer: StubIssuer, clock: object) -> None:
    with Verifier(issuer.url, AUDIENCE, leeway=0) as strict, pytest.raises(InvalidToken):
        strict.verify(issuer.sign(nbf=int(time.time()) + 10))


def test_another_issuer_is_refused(issuer: StubIssuer, verifier: Verifier) -> None:
    with pytest.raises(InvalidToken, match="another issuer"):
        verifier.verify(issuer.sign(iss="https://evil.example"))


def test_another_audience_is_refused(issuer: StubIssuer, verifier: Verifier) -> None:
    with pytest.raises(InvalidToken, match="audience"):
        verifier.verify(issuer.sign(aud="billing-api"))


def test_one_matching_audience_of_several_is_enough(issuer: StubIssuer) -> None:
    with Verifier(issuer.url, ["billing-api", AUDIENCE]) as verifier:
        verifier.verify(issuer.sign(aud=[AUDIENCE, "other"]))


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "iat", "jti"])
def test_each_required_claim_must_be_there(
    issuer: StubIssuer, verifier: Verifier, claim: str
) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(issuer.sign(**{claim: None}))


@pytest.mark.parametrize("kind", ["refresh", "mfa"])
def test_refresh_and_mfa_tokens_are_not_access_tokens(
    issuer: StubIssuer, verifier: Verifier, kind: str
) -> None:
    with pytest.raises(InvalidToken, match="not an access token"):
        verifier.verify(issuer.sign(type=kind))


def test_a_service_token_is_an_access_token(issuer: StubIssuer, verifier: Verifier) -> None:
    claims = verifier.verify(
        issuer.sign(type="service", sub="svc_1", client_id="svc_1", scope="orders:read")
    )
    assert claims.is_service
    assert claims.scopes == frozenset({"orders:read"})


def test_alg_none_is_refused_without_asking_the_issuer(
    issuer: StubIssuer, verifier: Verifier, rsa_key: SigningKey
) -> None:
    token = unsigned_token({"alg": "none", "typ": "at+jwt", "kid": rsa_key.kid}, issuer.claims())

    with pytest.raises(InvalidToken, match="algorithm"):
        verifier.verify(token)
    assert issuer.count("/.well-known/jwks.json") == 0


def test_hs256_signed_with_the_public_key_is_refused(
    issuer: StubIssuer, verifier: Verifier, rsa_key: SigningKey
) -> None:
    header = {"alg": "HS256", "typ": "at+jwt", "kid": rsa_key.kid}
    token = hmac_token(header, issuer.claims(), rsa_key.public_pem())

    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_the_algorithm_comes_from_the_key_not_the_header(
    issuer: StubIssuer, verifier: Verifier, ec_key: SigningKey, rsa_key: SigningKey
) -> None:
    # Signed by the EC key (ES256) but naming the RSA key: the RSA key only verifies RS256.
    with pytest.raises(InvalidToken):
        verifier.verify(issuer.sign(ec_key, kid=rsa_key.kid))


def test_an_algorithm_left_out_of_the_configuration_is_refused(issuer: StubIssuer) -> None:
    with (
        Verifier(issuer.url, AUDIENCE, algorithms=["ES256"]) as verifier,
        pytest.raises(InvalidToken, match="algorithm"),
    ):
        verifier.verify(issuer.sign())


@pytest.mark.parametrize("algorithms", [["RS256", "HS256"], ["none"], []])
def test_hmac_and_none_cannot_be_configured(algorithms: list[str]) -> None:
    with pytest.raises(ValueError):
        Verifier("https://issuer.example", AUDIENCE, algorithms=algorithms)


def test_a_tampered_payload_fails_the_signature(issuer: StubIssuer, verifier: Verifier) -> None:
    header, _, signature = issuer.sign().split(".")
    forged = unsigned_token({}, issuer.claims(roles=["admin"])).split(".")[1]

    with pytest.raises(InvalidToken, match="signature"):
        verifier.verify(f"{header}.{forged}.{signature}")


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "....", "Bearer x.y.z"])
def test_garbage_is_an_invalid_token(verifier: Verifier, token: str) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_a_token_without_kid_is_refused(issuer: StubIssuer, verifier: Verifier) -> None:
    import jwt

    key = issuer.keys[0]
    token = jwt.encode(issuer.claims(), key.private, algorithm=key.alg, headers={"typ": "at+jwt"})
    with pytest.raises(InvalidToken, match="kid"):
        verifier.verify(token)


def test_every_error_is_a_verification_error() -> None:
    assert issubclass(TokenExpired, InvalidToken)
    assert issubclass(InvalidToken, VerificationError)


def test_claims_of_the_wrong_type_are_refused(issuer: StubIssuer, verifier: Verifier) -> None:
    with pytest.raises(InvalidToken, match="roles"):
        verifier.verify(issuer.sign(roles="admin"))
    with pytest.raises(InvalidToken, match="scope"):
        verifier.verify(issuer.sign(scope=["a", "b"]))


def test_a_key_for_encryption_or_hmac_in_the_jwks_is_ignored(
    issuer: StubIssuer, clock: object
) -> None:
    enc = new_key("ES256", "enc-1")
    issuer.keys.append(enc)
    original = SigningKey.public_jwk

    def jwk(self: SigningKey) -> dict[str, object]:
        data = original(self)
        return {**data, "use": "enc"} if self.kid == "enc-1" else data

    SigningKey.public_jwk = jwk  # type: ignore[method-assign]
    try:
        with Verifier(issuer.url, AUDIENCE) as verifier:
            with pytest.raises(InvalidToken, match="unknown"):
                verifier.verify(issuer.sign(enc))
            verifier.verify(issuer.sign())
    finally:
        SigningKey.public_jwk = original  # type: ignore[method-assign]
