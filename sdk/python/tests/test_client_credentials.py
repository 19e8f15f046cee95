"""ClientCredentials: the grant, the cache, the refresh margin, errors, threads."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator

import pytest
from auth_service_client import ClientCredentials, ClientCredentialsError, Verifier
from issuer_stub import FakeClock, StubIssuer

TOKEN = "/oauth2/token"


@pytest.fixture
def creds(issuer: StubIssuer, clock: FakeClock) -> Iterator[ClientCredentials]:
    with ClientCredentials(
        issuer.token_endpoint, "svc", "s3cret", scope="orders:read", clock=clock
    ) as client:
        yield client


def test_the_token_is_fetched_once_and_reused(issuer: StubIssuer, creds: ClientCredentials) -> None:
    first = creds.token()
    assert creds.token() == first and creds.token() == first
    assert issuer.count(TOKEN) == 1
    assert creds.granted_scope == "orders:read"


def test_the_grant_is_sent_with_basic_auth_and_the_scope(
    issuer: StubIssuer, creds: ClientCredentials
) -> None:
    creds.token()
    _, authorization, form = issuer.seen[-1]
    assert authorization == "Basic " + base64.b64encode(b"svc:s3cret").decode()
    assert form == {"grant_type": "client_credentials", "scope": "orders:read"}


def test_client_secret_post_sends_form_fields(issuer: StubIssuer) -> None:
    with ClientCredentials(
        issuer.token_endpoint, "svc", "s3cret", auth_method="client_secret_post"
    ) as client:
        client.token()
    _, authorization, form = issuer.seen[-1]
    assert authorization is None
    assert form["client_id"] == "svc" and form["client_secret"] == "s3cret"
    assert "scope" not in form


def test_scopes_may_be_given_as_a_list(issuer: StubIssuer) -> None:
    with ClientCredentials(
        issuer.token_endpoint, "svc", "s3cret", scope=["orders:read", "orders:write"]
    ) as client:
        client.token()
    assert issuer.seen[-1][2]["scope"] == "orders:read orders:write"


def test_the_token_is_fetched_again_refresh_margin_before_expiry(
    issuer: StubIssuer, creds: ClientCredentials, clock: FakeClock
) -> None:
    first = creds.token()  # expires_in 300, margin 30: good until t+270
    clock.advance(269)
    assert creds.token() == first
    clock.advance(1)
    second = creds.token()
    assert second != first
    assert issuer.count(TOKEN) == 2


def test_a_short_token_is_still_reused_for_half_its_life(
    issuer: StubIssuer, creds: ClientCredentials, clock: FakeClock
) -> None:
    issuer.token_lifetime = 20
    creds.token()
    clock.advance(9)
    creds.token()
    assert issuer.count(TOKEN) == 1
    clock.advance(1)
    creds.token()
    assert issuer.count(TOKEN) == 2


def test_invalidate_forces_a_new_token(issuer: StubIssuer, creds: ClientCredentials) -> None:
    creds.token()
    creds.invalidate()
    creds.token()
    assert issuer.count(TOKEN) == 2


def test_auth_header(creds: ClientCredentials) -> None:
    assert creds.auth_header() == {"Authorization": f"Bearer {creds.token()}"}


def test_ten_threads_cause_one_request(issuer: StubIssuer, creds: ClientCredentials) -> None:
    issuer.token_gate = threading.Event()
    barrier = threading.Barrier(11)
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        token = creds.token()
        with lock:
            results.append(token)

    threads = [threading.Thread(target=work) for _ in range(10)]
    for thread in threads:
        thread.start()
    barrier.wait()
    issuer.token_gate.set()  # the one request in flight may answer now
    for thread in threads:
        thread.join()

    assert len(results) == 10 and len(set(results)) == 1
    assert issuer.count(TOKEN) == 1


def test_a_wrong_secret_raises_invalid_client(issuer: StubIssuer) -> None:
    with (
        ClientCredentials(issuer.token_endpoint, "svc", "wrong") as client,
        pytest.raises(ClientCredentialsError) as caught,
    ):
        client.token()
    assert caught.value.error == "invalid_client"
    assert caught.value.error_description == "who?"
    assert caught.value.status == 401


def test_a_scope_beyond_the_clients_raises_invalid_scope(issuer: StubIssuer) -> None:
    with (
        ClientCredentials(issuer.token_endpoint, "svc", "s3cret", scope="admin") as client,
        pytest.raises(ClientCredentialsError) as caught,
    ):
        client.token()
    assert caught.value.error == "invalid_scope" and caught.value.status == 400


def test_an_error_is_not_cached(issuer: StubIssuer, creds: ClientCredentials) -> None:
    issuer.failing.add(TOKEN)
    with pytest.raises(ClientCredentialsError) as caught:
        creds.token()
    assert caught.value.error == "temporarily_unavailable" and caught.value.status == 500
    issuer.failing.clear()
    creds.token()


def test_an_endpoint_out_of_reach_is_temporarily_unavailable(dead_url: str) -> None:
    with (
        ClientCredentials(dead_url + TOKEN, "svc", "s3cret") as client,
        pytest.raises(ClientCredentialsError) as caught,
    ):
        client.token()
    assert caught.value.error == "temporarily_unavailable" and caught.value.status is None


def test_the_service_token_verifies_as_a_service(
    issuer: StubIssuer, creds: ClientCredentials
) -> None:
    with Verifier(issuer.url, "orders-api") as verifier:
        claims = verifier.verify(creds.token())
    assert claims.is_service and claims.subject == "svc" and claims.scopes == {"orders:read"}
    assert "email" not in claims and claims.roles == frozenset()
