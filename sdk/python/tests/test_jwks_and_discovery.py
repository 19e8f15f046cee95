"""Verifier: discovery, the JWKS cache (max-age, ETag, refetch limits), an issuer out of reach."""

from __future__ import annotations

import threading

import pytest
from auth_service_client import InvalidToken, IssuerUnavailable, Verifier
from issuer_stub import AUDIENCE, FakeClock, StubIssuer, new_key

JWKS = "/.well-known/jwks.json"
RFC8414 = "/.well-known/oauth-authorization-server"
OPENID = "/.well-known/openid-configuration"


def test_discovery_then_one_jwks_fetch_serves_many_tokens(
    issuer: StubIssuer, verifier: Verifier
) -> None:
    for _ in range(5):
        verifier.verify(issuer.sign())

    assert issuer.count(RFC8414) == 1
    assert issuer.count(JWKS) == 1
    assert issuer.count(OPENID) == 0


def test_constructing_a_verifier_touches_no_network(issuer: StubIssuer) -> None:
    with Verifier(issuer.url, AUDIENCE):
        pass
    assert sum(issuer.requests.values()) == 0


def test_discovery_falls_back_to_openid_configuration(
    issuer: StubIssuer, verifier: Verifier
) -> None:
    issuer.missing.add(RFC8414)

    verifier.verify(issuer.sign())

    assert issuer.count(RFC8414) == 1 and issuer.count(OPENID) == 1


def test_a_discovery_document_for_another_issuer_is_refused(
    issuer: StubIssuer, verifier: Verifier
) -> None:
    issuer.claimed_issuer = "https://evil.example"

    with pytest.raises(IssuerUnavailable, match="evil"):
        verifier.verify(issuer.sign())
    assert issuer.count(OPENID) == 0  # no fallback past a wrong issuer
    assert issuer.count(JWKS) == 0


def test_an_explicit_jwks_uri_skips_discovery(issuer: StubIssuer) -> None:
    with Verifier(issuer.url, AUDIENCE, jwks_uri=issuer.jwks_uri) as verifier:
        verifier.verify(issuer.sign())
    assert issuer.count(RFC8414) == 0 and issuer.count(JWKS) == 1


def test_unknown_kid_refetches_once_then_rejects(
    issuer: StubIssuer, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.verify(issuer.sign())
    clock.advance(31)
    stranger = new_key("ES256", "never-published")

    with pytest.raises(InvalidToken, match="unknown"):
        verifier.verify(issuer.sign(stranger))

    assert issuer.count(JWKS) == 2


def test_random_kids_do_not_hammer_the_issuer(
    issuer: StubIssuer, verifier: Verifier, clock: FakeClock, ec_key: object
) -> None:
    verifier.verify(issuer.sign())
    clock.advance(31)
    for n in range(20):
        with pytest.raises(InvalidToken):
            verifier.verify(issuer.sign(issuer.keys[1], kid=f"random-{n}"))
        clock.advance(1)
    # One refetch at the first unknown kid (t+31); the next allowed only 30 s later (t+61).
    assert issuer.count(JWKS) == 2
    clock.advance(15)
    with pytest.raises(InvalidToken):
        verifier.verify(issuer.sign(issuer.keys[1], kid="random-late"))
    assert issuer.count(JWKS) == 3


def test_the_refetch_interval_is_configurable(issuer: StubIssuer, clock: FakeClock) -> None:
    with Verifier(issuer.url, AUDIENCE, clock=clock, jwks_min_refetch_interval=5) as verifier:
        verifier.verify(issuer.sign())
        clock.advance(5)
        with pytest.raises(InvalidToken):
            verifier.verify(issuer.sign(kid="unknown"))
    assert issuer.count(JWKS) == 2


def test_a_key_rotation_is_picked_up(
    issuer: StubIssuer, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.verify(issuer.sign())
    rotated = new_key("RS256", "rsa-2")
    issuer.keys.insert(0, rotated)
    clock.advance(31)

    claims = verifier.verify(issuer.sign(rotated))

    assert claims.subject == "user-42"
    assert issuer.jwks_statuses == [200, 200]  # the changed set came whole, not as a 304
    verifier.verify(issuer.sign(issuer.keys[1]))  # the old key still verifies its tokens


def test_a_rotation_right_after_a_fetch_waits_for_the_interval(
    issuer: StubIssuer, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.verify(issuer.sign())
    rotated = new_key("ES256", "ec-2")
    issuer.keys.append(rotated)

    with pytest.raises(InvalidToken):
        verifier.verify(issuer.sign(rotated))
    clock.advance(30)
    verifier.verify(issuer.sign(rotated))


def test_max_age_is_honoured_then_an_etag_revalidation_keeps_the_keys(
    issuer: StubIssuer, verifier: Verifier, clock: FakeClock
) -> None:
    issuer.max_age = 120
    verifier.verify(issuer.sign())
    clock.advance(119)
    verifier.verify(issuer.sign())
    assert issuer.jwks_statuses == [200]

    clock.advance(1)
    verifier.verify(issuer.sign())
    assert issuer.jwks_statuses == [200, 304]

    clock.advance(60)  # the 304 restarted the max-age
    verifier.verify(issuer.sign())
    assert issuer.jwks_statuses == [200, 304]
    clock.advance(60)
    verifier.verify(issuer.sign())
    assert issuer.jwks_statuses == [200, 304, 304]


def test_without_cache_control_the_keys_are_kept_five_minutes(
    issuer: StubIssuer, verifier: Verifier, clock: FakeClock
) -> None:
    issuer.max_age = None
    verifier.verify(issuer.sign())
    clock.advance(299)
    verifier.verify(issuer.sign())
    assert issuer.count(JWKS) == 1
    clock.advance(1)
    verifier.verify(issuer.sign())
    assert issuer.count(JWKS) == 2


def test_a_key_dropped_by_the_issuer_stops_verifying_after_max_age(
    issuer: StubIssuer, verifier: Verifier, clock: FakeClock
) -> None:
    token = issuer.sign(issuer.keys[1])
    verifier.verify(token)
    issuer.keys.pop(1)
    clock.advance(300)

    with pytest.raises(InvalidToken, match="unknown"):
        verifier.verify(token)


def test_an_issuer_out_of_reach_raises_issuer_unavailable(
    issuer: StubIssuer, dead_url: str
) -> None:
    token = issuer.sign(iss=dead_url)
    with Verifier(dead_url, AUDIENCE) as verifier, pytest.raises(IssuerUnavailable) as caught:
        verifier.verify(token)
    assert caught.value.retry_after >= 1


def test_a_failing_issuer_is_not_asked_again_before_the_interval(
    issuer: StubIssuer, verifier: Verifier, clock: FakeClock
) -> None:
    issuer.failing.update({RFC8414, OPENID})
    for _ in range(5):
        with pytest.raises(IssuerUnavailable) as caught:
            verifier.verify(issuer.sign())
    assert issuer.count(RFC8414) == 1
    assert caught.value.retry_after == 30

    issuer.failing.clear()
    clock.advance(30)
    verifier.verify(issuer.sign())
    assert issuer.count(RFC8414) == 2


def test_a_failing_jwks_endpoint_is_issuer_unavailable_and_rate_limited(
    issuer: StubIssuer, verifier: Verifier, clock: FakeClock
) -> None:
    issuer.failing.add(JWKS)
    for _ in range(3):
        with pytest.raises(IssuerUnavailable):
            verifier.verify(issuer.sign())
    assert issuer.count(JWKS) == 1

    issuer.failing.clear()
    clock.advance(30)
    verifier.verify(issuer.sign())


def test_held_keys_keep_working_while_the_jwks_endpoint_is_down(
    issuer: StubIssuer, verifier: Verifier, clock: FakeClock
) -> None:
    verifier.verify(issuer.sign())
    issuer.failing.add(JWKS)
    clock.advance(301)

    verifier.verify(issuer.sign())
    verifier.verify(issuer.sign())

    assert issuer.jwks_statuses == [200, 500]


def test_concurrent_first_requests_fetch_once(issuer: StubIssuer, verifier: Verifier) -> None:
    tokens = [issuer.sign() for _ in range(10)]
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []

    def work(token: str) -> None:
        barrier.wait()
        try:
            verifier.verify(token)
        except BaseException as exc:  # collected, asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert issuer.count(RFC8414) == 1 and issuer.count(JWKS) == 1
