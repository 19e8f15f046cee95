"""Signing keys: one signs, every loaded key verifies, and the JWKS publishes them all.

Keys come from ``JWT_KEYS_DIR`` (one PEM per key; the newest file name signs: this is how
``flask keys rotate`` works), else from ``JWT_PRIVATE_KEY``/``_FILE``; development generates one
into the instance folder on first start. Keys are parsed once per process: PyJWT re-parsing a PEM
on every signature would cost more than the signature itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey

from ..config_env import ConfigError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
ALGORITHMS = ("RS256", "ES256", "EdDSA")


class KeyError_(ConfigError, ValueError):
    """A key file is unusable (wrong type for the algorithm, unreadable, not a private key)."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: PrivateKey
    public_key: PublicKey
    jwk: dict[str, Any]


def generate_private_key(algorithm: str) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyError_(f"unsupported algorithm {algorithm}")


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _algorithm_of(key: PrivateKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise KeyError_("RSA keys must be at least 2048 bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyError_("ES256 needs a P-256 key")
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise KeyError_("unsupported private key type")


def load_signing_key(pem: bytes | str) -> SigningKey:
    """Parse a PEM private key; the ``kid`` is its RFC 7638 thumbprint, stable across restarts."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        private_key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyError_("not a PEM private key without a passphrase") from exc
    if not isinstance(
        private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise KeyError_("unsupported private key type")
    algorithm = _algorithm_of(private_key)
    public_key = private_key.public_key()
    public_pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_obj: RSAKey | ECKey | OKPKey
    if algorithm == "RS256":
        jwk_obj = RSAKey.import_key(public_pem)
    elif algorithm == "ES256":
        jwk_obj = ECKey.import_key(public_pem)
    else:
        jwk_obj = OKPKey.import_key(public_pem)
    kid = jwk_obj.thumbprint()
    jwk = {**jwk_obj.as_dict(private=False), "kid": kid, "use": "sig", "alg": algorithm}
    return SigningKey(kid, algorithm, private_key, public_key, jwk)


class KeyRing:
    """The keys this process signs and verifies with."""

    def __init__(self, keys: list[SigningKey], signing: SigningKey) -> None:
        self.signing = signing
        self.by_kid = {key.kid: key for key in keys}
        jwks = {"keys": [key.jwk for key in reversed(keys)]}  # the signer first
        self.jwks_json = json.dumps(jwks, sort_keys=True, separators=(",", ":")).encode()
        self.jwks_etag = hashlib.sha256(self.jwks_json).hexdigest()[:32]

    @property
    def algorithms(self) -> list[str]:
        return sorted({key.algorithm for key in self.by_kid.values()})


def key_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.pem") if p.is_file())


def write_new_key(directory: Path, algorithm: str) -> Path:
    """Create a key file whose name sorts last, so it signs from the next start on."""
    directory.mkdir(parents=True, exist_ok=True)
    key = generate_private_key(algorithm)
    kid = load_signing_key(private_key_pem(key)).kid
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = directory / f"{stamp}-{time.time_ns() % 10**9:09d}-{kid[:8]}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_pem(key))
    return path


def _generated_keys(directory: Path, algorithm: str) -> list[SigningKey]:
    """The development keys in ``directory``, one generated first when none signs ``algorithm``.

    Several processes start at once (gunicorn's workers under `make run`): without the lock
    each would find the directory empty, write a key of its own and sign with it, and every
    worker would refuse the others' tokens. The first one to take the lock writes the key;
    the others wait, then find it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".generate.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        keys = [load_signing_key(path.read_bytes()) for path in key_files(directory)]
        if not keys or keys[-1].algorithm != algorithm:
            keys.append(load_signing_key(write_new_key(directory, algorithm).read_bytes()))
    return keys


def load_key_ring(
    *, algorithm: str, private_key: str | None, keys_dir: str | None, generated_dir: Path | None
) -> KeyRing:
    """Load every configured key; the signer must match ``algorithm``.

    :raises KeyError_: when no key is configured (and none may be generated) or one is unusable.
    """
    if keys_dir:
        directory = Path(keys_dir)
        try:
            keys = [load_signing_key(path.read_bytes()) for path in key_files(directory)]
        except OSError as exc:
            raise KeyError_(f"JWT_KEYS_DIR {keys_dir}: a key file cannot be read ({exc})") from exc
        if not keys:
            raise KeyError_(
                f"JWT_KEYS_DIR {keys_dir} holds no .pem key: make the first one with "
                f"`flask --app auth_microservice_app.app keys generate --out {keys_dir}`"
            )
    elif private_key:
        keys = [load_signing_key(private_key)]
    elif generated_dir is not None:
        keys = _generated_keys(generated_dir, algorithm)
    else:
        raise KeyError_("no signing key: set JWT_PRIVATE_KEY, JWT_PRIVATE_KEY_FILE or JWT_KEYS_DIR")
    signing = keys[-1]
    if signing.algorithm != algorithm:
        raise KeyError_(f"the signing key is {signing.algorithm} but JWT_ALGORITHM is {algorithm}")
    return KeyRing(keys, signing)
