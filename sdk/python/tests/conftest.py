"""Fixtures for the SDK tests: a local issuer with keys of each algorithm, a hand-moved clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from auth_service_client import Verifier
from issuer_stub import AUDIENCE, Client, FakeClock, SigningKey, StubIssuer, new_key


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return new_key("RS256", "rsa-1")


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return new_key("ES256", "ec-1")


@pytest.fixture(scope="session")
def ed_key() -> SigningKey:
    return new_key("EdDSA", "ed-1")


@pytest.fixture
def issuer(rsa_key: SigningKey, ec_key: SigningKey, ed_key: SigningKey) -> Iterator[StubIssuer]:
    stub = StubIssuer(
        keys=[rsa_key, ec_key, ed_key],
        clients={
            "svc": Client("s3cret", {"orders:read", "orders:write"}),
            "gateway": Client("g@te way", {"introspect"}),
        },
    ).start()
    yield stub
    stub.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(issuer: StubIssuer, clock: FakeClock) -> Iterator[Verifier]:
    with Verifier(issuer.url, AUDIENCE, clock=clock) as verifier:
        yield verifier


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
