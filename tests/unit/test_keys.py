from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from auth_microservice_app.utils.keys import (
    KeyError_,
    generate_private_key,
    key_files,
    load_key_ring,
    load_signing_key,
    private_key_pem,
    write_new_key,
)

ROOT = Path(__file__).resolve().parents[2]


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


GENERATE_AT_ONCE = """
import sys, time
from pathlib import Path
from auth_microservice_app.utils.keys import load_key_ring
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
ring = load_key_ring(
    algorithm="RS256", private_key=None, keys_dir=None, generated_dir=Path(sys.argv[1])
)
print(ring.signing.kid)
"""


def test_processes_starting_together_generate_one_development_key(tmp_path):
    """gunicorn's workers under `make run` load the key ring at the same moment."""
    generated = tmp_path / "jwt-keys"
    start = time.time() + 2.0  # every process is up and waiting by then
    processes = [
        subprocess.Popen(  # noqa: S603 - our interpreter, our code
            [sys.executable, "-c", GENERATE_AT_ONCE, str(generated), str(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [process.communicate(timeout=60) for process in processes]
    assert all(process.returncode == 0 for process in processes), results
    kids = {out.strip() for out, _ in results}
    assert len(kids) == 1, f"each process signs with its own key: {kids}"
    assert len(key_files(generated)) == 1
