from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from auth_microservice_app.utils.keys import (
    KeyError_,
    generate_private_key,
    load_key_ring,
    load_signing_key,
    private_key_pem,
    write_new_key,
)


@pytest.mark.parametrize(
    ("algorithm", "kty"), [("RS256", "RSA"), ("ES256", "EC"), ("EdDSA", "OKP")]
)
def test_each_algorithm_loads_with_a_stable_thumbprint_kid(algorithm, kty):
    pem = private_key_pem(generate_private_key(algorithm))
    first, second = load_signing_key(pem), load_signing_key(pem)
    assert first.kid == second.kid
    assert first.algorithm == algorithm
    assert first.jwk["kty"] == kty
    assert first.jwk["kid"] == first.kid
    assert "d" not in first.jwk  # never the private part


def test_wrong_curve_is_refused():
    pem = private_key_pem(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(KeyError_, match="P-256"):
        load_signing_key(pem)


def test_garbage_is_refused():
    with pytest.raises(KeyError_):
        load_signing_key("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


def test_newest_key_in_directory_signs_and_all_verify(tmp_path):
    first = write_new_key(tmp_path, "RS256")
    second = write_new_key(tmp_path, "RS256")
    ring = load_key_ring(
        algorithm="RS256", private_key=None, keys_dir=str(tmp_path), generated_dir=None
    )
    assert ring.signing.kid == load_signing_key(second.read_bytes()).kid
    assert set(ring.by_kid) == {
        load_signing_key(first.read_bytes()).kid,
        load_signing_key(second.read_bytes()).kid,
    }


def test_signer_must_match_the_configured_algorithm(tmp_path):
    write_new_key(tmp_path, "ES256")
    with pytest.raises(KeyError_, match="JWT_ALGORITHM"):
        load_key_ring(
            algorithm="RS256", private_key=None, keys_dir=str(tmp_path), generated_dir=None
        )


def test_no_key_at_all_is_refused():
    with pytest.raises(KeyError_, match="JWT_PRIVATE_KEY"):
        load_key_ring(algorithm="RS256", private_key=None, keys_dir=None, generated_dir=None)
