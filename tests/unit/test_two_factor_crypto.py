"""TOTP secret encryption: AES-GCM under a key ring, rotation, and the start-up check."""

from __future__ import annotations

import base64
import os

import pytest

from auth_microservice_app.config import DEV_TOTP_KEY, ConfigError, load_config
from auth_microservice_app.utils.encryption import (
    DecryptionError,
    KeyRingError,
    load_key_ring,
    parse_key_ring,
    passphrase_key_ring,
)

from .test_config import PRODUCTION_ENV


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_round_trip_with_key_id_in_front():
    ring = parse_key_ring(f"k1:{key()}")
    stored = ring.encrypt("JBSWY3DPEHPK3PXP", associated_data="user-1")
    assert stored.startswith("k1:")
    assert "JBSWY3DPEHPK3PXP" not in stored
    assert ring.decrypt(stored, associated_data="user-1") == "JBSWY3DPEHPK3PXP"


def test_each_encryption_uses_a_new_nonce():
    ring = parse_key_ring(f"k1:{key()}")
    assert ring.encrypt("s", associated_data="u") != ring.encrypt("s", associated_data="u")


def test_ciphertext_is_bound_to_its_associated_data():
    ring = parse_key_ring(f"k1:{key()}")
    stored = ring.encrypt("secret", associated_data="user-1")
    with pytest.raises(DecryptionError):
        ring.decrypt(stored, associated_data="user-2")


def test_tampering_is_detected():
    ring = parse_key_ring(f"k1:{key()}")
    kid, nonce, sealed = ring.encrypt("secret", associated_data="u").split(":")
    flipped = ("A" if sealed[0] != "A" else "B") + sealed[1:]
    with pytest.raises(DecryptionError):
        ring.decrypt(f"{kid}:{nonce}:{flipped}", associated_data="u")
    with pytest.raises(DecryptionError):
        ring.decrypt("garbage", associated_data="u")


def test_first_key_encrypts_and_every_key_decrypts():
    old, new = key(), key()
    before = parse_key_ring(f"old:{old}")
    stored = before.encrypt("secret", associated_data="u")
    after = parse_key_ring(f"new:{new}, old:{old}")
    assert after.primary == "new"
    assert after.decrypt(stored, associated_data="u") == "secret"
    assert after.encrypt("secret", associated_data="u").startswith("new:")
    with pytest.raises(DecryptionError, match="no key 'old'"):
        parse_key_ring(f"new:{new}").decrypt(stored, associated_data="u")


def test_url_safe_and_unpadded_base64_are_accepted():
    raw = os.urandom(32)
    standard = parse_key_ring("k:" + base64.b64encode(raw).decode())
    urlsafe = parse_key_ring("k:" + base64.urlsafe_b64encode(raw).decode().rstrip("="))
    stored = standard.encrypt("x", associated_data="u")
    assert urlsafe.decrypt(stored, associated_data="u") == "x"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "lists no key"),
        (" , ", "lists no key"),
        ("justakey", "not kid:base64key"),
        ("bad kid:" + "a" * 44, "invalid key id"),
        ("k1:not*base64!", "not valid base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "shorter than 32 bytes"),
        ("k1:{k},k1:{k}", "listed twice"),
    ],
)
def test_malformed_key_lists_are_refused(value, reason):
    with pytest.raises(KeyRingError, match=reason):
        parse_key_ring(value.format(k=key()))


def test_error_messages_never_contain_the_key():
    secret = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(KeyRingError) as error:
        parse_key_ring(f"k1:{secret}")
    assert secret not in str(error.value)


def test_development_default_works_as_a_passphrase():
    ring = load_key_ring(DEV_TOTP_KEY, allow_passphrase=True)
    assert ring.primary.startswith("dev-")
    again = load_key_ring(DEV_TOTP_KEY, allow_passphrase=True)
    assert again.decrypt(ring.encrypt("s", associated_data="u"), associated_data="u") == "s"
    other = passphrase_key_ring("another passphrase")
    assert other.primary != ring.primary
    with pytest.raises(KeyRingError):
        load_key_ring(DEV_TOTP_KEY, allow_passphrase=False)


@pytest.mark.parametrize("env", ["staging", "production"])
def test_deployed_environments_refuse_a_malformed_key_list_at_start_up(env):
    config = load_config(
        environ={**PRODUCTION_ENV, "APP_ENV": env, "TOTP_ENCRYPTION_KEYS": "k1:tooshort"}
    )
    with pytest.raises(ConfigError, match="TOTP_ENCRYPTION_KEYS"):
        config.validate()


@pytest.mark.parametrize("env", ["staging", "production"])
def test_deployed_environments_accept_a_key_list(env):
    keys = f"k2:{key()},k1:{key()}"
    load_config(environ={**PRODUCTION_ENV, "APP_ENV": env, "TOTP_ENCRYPTION_KEYS": keys}).validate()


@pytest.mark.parametrize("env", ["development", "testing"])
def test_development_and_testing_accept_the_default(env):
    config = load_config(environ={"APP_ENV": env})
    assert config.TOTP_ENCRYPTION_KEYS == DEV_TOTP_KEY
    config.validate()


def test_two_factor_settings_have_documented_defaults():
    config = load_config(environ={})
    assert config.TOTP_ISSUER == "Auth Service"
    assert config.MFA_TOKEN_TTL == 300
    assert config.SMS_BACKEND == "console"
    with pytest.raises(ConfigError, match="SMS_BACKEND"):
        load_config(environ={"SMS_BACKEND": "carrier-pigeon"}).validate()
