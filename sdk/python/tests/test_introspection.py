"""Verifier with revocation="introspect": RFC 7662 after the local checks, cached per jti."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from auth_service_client import (
    ClientCredentials,
    InvalidToken,
    IssuerUnavailable,
    TokenRevoked,
    Verifier,
)
from issuer_stub import AUDIENCE, FakeClock, StubIssuer

INTROSPECT = "/oauth2/introspect"


@pytest.fixture
def gateway(issuer: StubIssuer) -> Iterator[ClientCredentials]:
    with ClientCredentials(issuer.token_endpoint, "gateway", "g@te way") as client:
        yield client


@pytest.fixture
def checking(
    issuer: StubIssuer, clock: FakeClock, gateway: ClientCredentials
) -> Iterator[Verifier]:
    with Verifier(
        issuer.url,
        AUDIENCE,
        clock=clock,
        revocation="introspect",
        introspection_client=gateway,
    ) as verifier:
        yield verifier


def test_an_active_token_passes_and_the_answer_is_cached(
    issuer: StubIssuer, checking: Verifier, clock: FakeClock
) -> None:
    token = issuer.sign()
    checking.verify(token)
    clock.advance(4.9)
    checking.verify(token)
    assert issuer.count(INTROSPECT) == 1

    clock.advance(0.1)
    checking.verify(token)
    assert issuer.count(INTROSPECT) == 2


def test_the_client_authenticates_with_http_basic_form_encoded(
    issuer: StubIssuer, checking: Verifier
) -> None:
    token = issuer.sign()
    checking.verify(token)

    path, authorization, form = issuer.seen[-1]
    assert path == INTROSPECT
    assert authorization is not None and authorization.startswith("Basic ")
    assert base64.b64decode(authorization[6:]) == b"gateway:g%40te%20way"
    assert form == {"token": token, "token_type_hint": "access_token"}


def test_a_revoked_token_raises_token_revoked_and_stays_so_while_cached(
    issuer: StubIssuer, checking: Verifier, clock: FakeClock
) -> None:
    token = issuer.sign(jti="revoked-1")
    issuer.revoked.add("revoked-1")

    with pytest.raises(TokenRevoked):
        checking.verify(token)
    issuer.revoked.clear()
    with pytest.raises(TokenRevoked):
        checking.verify(token)
    assert issuer.count(INTROSPECT) == 1
    assert issubclass(TokenRevoked, InvalidToken)


def test_revocation_is_seen_once_the_cache_runs_out(
    issuer: StubIssuer, checking: Verifier, clock: FakeClock
) -> None:
    token = issuer.sign(jti="soon-revoked")
    checking.verify(token)
    issuer.revoked.add("soon-revoked")
    checking.verify(token)  # cached answer

    clock.advance(5)
    with pytest.raises(TokenRevoked):
        checking.verify(token)


def test_cache_seconds_zero_asks_every_time(
    issuer: StubIssuer, clock: FakeClock, gateway: ClientCredentials
) -> None:
    with Verifier(
        issuer.url,
        AUDIENCE,
        clock=clock,
        revocation="introspect",
        introspection_client=gateway,
        introspection_cache_seconds=0,
    ) as verifier:
        token = issuer.sign()
        verifier.verify(token)
        verifier.verify(token)
    assert issuer.count(INTROSPECT) == 2


def test_an_invalid_token_is_refused_before_introspection(
    issuer: StubIssuer, checking: Verifier
) -> None:
    with pytest.raises(InvalidToken):
        checking.verify(issuer.sign(aud="someone-else"))
    assert issuer.count(INTROSPECT) == 0


def test_a_client_without_the_introspect_scope_makes_the_issuer_unavailable(
    issuer: StubIssuer, clock: FakeClock
) -> None:
    with (
        ClientCredentials(issuer.token_endpoint, "svc", "s3cret") as svc,
        Verifier(
            issuer.url, AUDIENCE, clock=clock, revocation="introspect", introspection_client=svc
        ) as verifier,
        pytest.raises(IssuerUnavailable, match="invalid_client"),
    ):
        verifier.verify(issuer.sign())


def test_introspection_out_of_reach_is_issuer_unavailable(
    issuer: StubIssuer, gateway: ClientCredentials, dead_url: str
) -> None:
    with (
        Verifier(
            issuer.url,
            AUDIENCE,
            revocation="introspect",
            introspection_client=gateway,
            introspection_endpoint=dead_url + INTROSPECT,
        ) as verifier,
        pytest.raises(IssuerUnavailable, match="unreachable"),
    ):
        verifier.verify(issuer.sign())


def test_introspection_needs_a_client() -> None:
    with pytest.raises(ValueError, match="introspection_client"):
        Verifier("https://issuer.example", AUDIENCE, revocation="introspect")
