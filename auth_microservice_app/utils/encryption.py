"""TOTP secrets at rest: AES-256-GCM under a key ring, with the key id kept beside the ciphertext.

``TOTP_ENCRYPTION_KEYS`` is a comma-separated list of ``kid:base64key`` entries, each key at
least 32 random bytes (``openssl rand -base64 32``). The first entry encrypts; every entry
decrypts, so a key is rotated by putting a new one first and keeping the old one until
``flask two-factor rotate-key`` has re-encrypted every secret (or until each has been rewritten).
The AES key is derived from each entry with HKDF-SHA256, so the configured bytes are never used
raw and any length of 32 bytes or more works.

A stored value is ``kid:nonce:ciphertext`` (nonce and ciphertext+tag in URL-safe base64). The
user id is bound as associated data: a ciphertext copied onto another user's row fails to
decrypt instead of handing that user someone else's secret.

This module imports nothing from the app, so :mod:`..config` can validate a value with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_KEY_BYTES = 32
NONCE_BYTES = 12
KID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
HKDF_INFO = b"auth-service totp-secret aes-256-gcm v1"
LOOKUP_INFO = b"auth-service backup-code lookup hmac-sha256 v1"
#: Hex digits of a lookup hint: 16 bits, so a wrong code matches one of ten codes about once in
#: 6,500 tries, while a stolen table still holds 24 unknown bits per code under argon2id.
LOOKUP_HEX = 4


class KeyRingError(ValueError):
    """``TOTP_ENCRYPTION_KEYS`` cannot be parsed; the message says why (never the key)."""


class DecryptionError(ValueError):
    """A stored secret is corrupt, bound to another user, or under a key no longer configured."""


def _derive(material: bytes) -> bytes:
    return _derive_with(material, HKDF_INFO)


def _derive_with(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


def _b64decode(text: str) -> bytes:
    # Standard or URL-safe alphabet, padding optional; anything else is refused, not skipped.
    standard = text.replace("-", "+").replace("_", "/")
    padded = standard + "=" * (-len(standard) % 4)
    try:
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise KeyRingError("is not valid base64") from exc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class EncryptionKeyRing:
    """The AES keys by kid; ``primary`` encrypts, all of them decrypt."""

    primary: str
    keys: dict[str, bytes]

    def encrypt(self, plaintext: str, *, associated_data: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.primary]).encrypt(
            nonce, plaintext.encode("utf-8"), associated_data.encode("utf-8")
        )
        return f"{self.primary}:{_b64(nonce)}:{_b64(sealed)}"

    def decrypt(self, stored: str, *, associated_data: str) -> str:
        """The plaintext of ``stored``.

        :raises DecryptionError: unknown kid, malformed value, or authentication failure.
        """
        kid, nonce, sealed = self._split(stored)
        key = self.keys.get(kid)
        if key is None:
            raise DecryptionError(f"no key {kid!r} in TOTP_ENCRYPTION_KEYS")
        try:
            plaintext = AESGCM(key).decrypt(nonce, sealed, associated_data.encode("utf-8"))
        except InvalidTag:
            raise DecryptionError("the stored secret does not authenticate") from None
        return plaintext.decode("utf-8")

    def key_id(self, stored: str) -> str:
        return self._split(stored)[0]

    def lookup_hint(self, value: str, *, kid: str | None = None) -> str:
        """``kid:hex``: a short keyed hash of ``value``, to find a salted hash without trying
        each one. Keyed (HMAC, a key derived from the ring's), so the database alone does not
        narrow the search down; short, so it does not narrow it down much for anyone."""
        kid = kid or self.primary
        key = _derive_with(self.keys[kid], LOOKUP_INFO)
        digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{kid}:{digest[:LOOKUP_HEX]}"

    @staticmethod
    def _split(stored: str) -> tuple[str, bytes, bytes]:
        parts = stored.split(":")
        if len(parts) != 3:
            raise DecryptionError("the stored secret is not kid:nonce:ciphertext")
        try:
            nonce, sealed = _b64decode(parts[1]), _b64decode(parts[2])
        except KeyRingError:
            raise DecryptionError("the stored secret is not base64") from None
        if len(nonce) != NONCE_BYTES:
            raise DecryptionError("the stored secret has a bad nonce")
        return parts[0], nonce, sealed


def parse_key_ring(value: str) -> EncryptionKeyRing:
    """Parse ``kid:base64key[,kid:base64key...]``; the first entry encrypts.

    :raises KeyRingError: empty list, an entry without ``kid:``, a bad kid, bad base64, a key
        shorter than 32 bytes, or a kid listed twice.
    """
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if not entries:
        raise KeyRingError("lists no key")
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(entries, start=1):
        kid, sep, encoded = entry.partition(":")
        if not sep:
            raise KeyRingError(f"entry {position} is not kid:base64key")
        if not KID_PATTERN.match(kid):
            raise KeyRingError(f"entry {position} has an invalid key id (letters, digits, _.-)")
        if kid in keys:
            raise KeyRingError(f"key id {kid!r} is listed twice")
        try:
            material = _b64decode(encoded.strip())
        except KeyRingError:
            raise KeyRingError(f"key {kid!r} is not valid base64") from None
        if len(material) < MIN_KEY_BYTES:
            raise KeyRingError(f"key {kid!r} is shorter than {MIN_KEY_BYTES} bytes")
        keys[kid] = _derive(material)
    return EncryptionKeyRing(primary=entries[0].partition(":")[0], keys=keys)


def passphrase_key_ring(passphrase: str) -> EncryptionKeyRing:
    """A one-key ring derived from a passphrase (SHA-256): development and testing only.

    The kid is a fingerprint of the passphrase, so changing it never decrypts with a wrong key
    silently: old secrets then fail with "no key" instead.
    """
    material = hashlib.sha256(passphrase.encode("utf-8")).digest()
    kid = "dev-" + hashlib.sha256(b"kid:" + material).hexdigest()[:8]
    return EncryptionKeyRing(primary=kid, keys={kid: _derive(material)})


def load_key_ring(value: str, *, allow_passphrase: bool) -> EncryptionKeyRing:
    """The ring for a ``TOTP_ENCRYPTION_KEYS`` value.

    With ``allow_passphrase`` (development, testing), a value that is not a key list (such as
    the built-in development default) is used as a passphrase instead of being refused.

    :raises KeyRingError: a malformed value when passphrases are not allowed.
    """
    try:
        return parse_key_ring(value)
    except KeyRingError:
        if not allow_passphrase:
            raise
        return passphrase_key_ring(value)
