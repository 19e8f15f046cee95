"""What the database holds: an encrypted secret, hashed backup codes, and a schema that
matches the models; key rotation keeps every secret readable."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text

from auth_microservice_app.extensions import db
from auth_microservice_app.utils.encryption import HKDF_INFO
from tests.conftest import AuthActions

from .conftest import TwoFactor

pytestmark = pytest.mark.integration
TABLES = {"two_factor_credentials", "two_factor_backup_codes", "mfa_challenges"}


def new_key() -> bytes:
    return os.urandom(32)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text_: str) -> bytes:
    return base64.urlsafe_b64decode(text_ + "=" * (-len(text_) % 4))


def rows(app, sql: str, **params) -> list:
    with app.app_context():
        return list(db.session.execute(text(sql), params).all())


def enroll_on(other_app, clock, email: str = "alice@example.com"):
    client = other_app.test_client()
    return TwoFactor(client, AuthActions(client), clock).enroll(email)


def test_secret_is_stored_encrypted_and_decrypts_with_the_configured_key(
    app, make_other_app, clock
):
    key = new_key()
    keyed = make_other_app(TOTP_ENCRYPTION_KEYS=f"k1:{b64(key)}")
    enrolled = enroll_on(keyed, clock)
    [(user_id, stored)] = rows(app, "SELECT user_id, secret_ciphertext FROM two_factor_credentials")
    assert enrolled.secret not in stored
    assert base64.b32decode(enrolled.secret) not in base64.b64decode(
        stored.split(":")[2] + "==", altchars=b"-_"
    )
    kid, nonce, sealed = stored.split(":")
    assert kid == "k1"
    aes_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(key)
    plaintext = AESGCM(aes_key).decrypt(
        unb64(nonce), unb64(sealed), f"totp-secret:{uuid.UUID(str(user_id))}".encode()
    )
    assert plaintext.decode() == enrolled.secret
    with pytest.raises(Exception):  # noqa: B017, PT011 - InvalidTag: bound to the user id
        AESGCM(aes_key).decrypt(unb64(nonce), unb64(sealed), b"totp-secret:someone-else")


def test_two_setups_encrypt_differently(app, tfa, auth):
    access = auth.signup_and_login(verified=True)["access_token"]
    tfa.setup(access)
    [(first,)] = rows(app, "SELECT secret_ciphertext FROM two_factor_credentials")
    tfa.setup(access)
    [(second,)] = rows(app, "SELECT secret_ciphertext FROM two_factor_credentials")
    assert first.split(":")[1] != second.split(":")[1]  # a fresh nonce each time


def test_backup_codes_are_stored_as_salted_argon2_hashes(app, tfa):
    enrolled = tfa.enroll()
    hashes_ = [h for (h,) in rows(app, "SELECT code_hash FROM two_factor_backup_codes")]
    assert len(hashes_) == 10
    assert len(set(hashes_)) == 10
    assert all(h.startswith("$argon2id$") for h in hashes_)
    for code in enrolled.backup_codes:
        assert not any(code in h or code.replace("-", "") in h for h in hashes_)


def test_mfa_challenges_are_recorded_and_spent(app, tfa):
    enrolled = tfa.enroll()
    token = tfa.challenge()
    [(amr, used_at, ip)] = rows(app, "SELECT amr, used_at, ip FROM mfa_challenges")
    assert amr == ["pwd"]
    assert used_at is None
    assert ip == "127.0.0.1"
    assert tfa.verify(token, tfa.next_code(enrolled.secret)).status_code == 200
    [(used_at,)] = rows(app, "SELECT used_at FROM mfa_challenges")
    assert used_at is not None


def test_key_rotation_decrypts_with_any_key_and_the_command_reencrypts(app, make_other_app, clock):
    old, new = new_key(), new_key()
    before = make_other_app(TOTP_ENCRYPTION_KEYS=f"old:{b64(old)}")
    alice = enroll_on(before, clock, "alice@example.com")

    rotated = make_other_app(TOTP_ENCRYPTION_KEYS=f"new:{b64(new)},old:{b64(old)}")
    bob = enroll_on(rotated, clock, "bob@example.com")
    kids = dict(
        rows(
            app,
            "SELECT u.email, split_part(c.secret_ciphertext, ':', 1) FROM "
            "two_factor_credentials c JOIN users u ON u.id = c.user_id",
        )
    )
    assert kids == {"alice@example.com": "old", "bob@example.com": "new"}
    client = rotated.test_client()
    flow = TwoFactor(client, AuthActions(client), clock)
    assert flow.verify(flow.challenge(alice.email), flow.next_code(alice.secret)).status_code == 200

    result = rotated.test_cli_runner().invoke(args=["two-factor", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 of 2" in result.output
    after = {
        kid
        for (kid,) in rows(
            app, "SELECT split_part(secret_ciphertext, ':', 1) FROM two_factor_credentials"
        )
    }
    assert after == {"new"}

    only_new = make_other_app(TOTP_ENCRYPTION_KEYS=f"new:{b64(new)}")
    client = only_new.test_client()
    flow = TwoFactor(client, AuthActions(client), clock)
    for user in (alice, bob):
        response = flow.verify(flow.challenge(user.email), flow.next_code(user.secret))
        assert response.status_code == 200, response.json


def test_a_secret_under_a_key_no_longer_configured_is_a_503_a_warning_and_a_report(
    make_other_app, clock, caplog
):
    old, new = new_key(), new_key()
    alice = enroll_on(make_other_app(TOTP_ENCRYPTION_KEYS=f"old:{b64(old)}"), clock)

    caplog.clear()
    only_new = make_other_app(TOTP_ENCRYPTION_KEYS=f"new:{b64(new)}")  # "old" dropped too soon
    warnings = [r for r in caplog.records if "no longer in TOTP_ENCRYPTION_KEYS" in r.message]
    assert [r.credentials for r in warnings] == [1]

    client = only_new.test_client()
    flow = TwoFactor(client, AuthActions(client), clock)
    caplog.clear()
    response = flow.verify(flow.challenge(alice.email), flow.next_code(alice.secret))
    assert response.status_code == 503
    assert response.json["error"]["code"] == "service_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    [line] = [r for r in caplog.records if r.message.startswith("TOTP secret cannot be decrypted")]
    assert line.key_id == "old"
    assert alice.secret not in caplog.text

    result = only_new.test_cli_runner().invoke(args=["two-factor", "rotate-key"])
    assert result.exit_code != 0
    assert "1 secret(s) still under key 'old', which is not configured" in result.output


def test_migration_matches_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), db.metadata)

    def table_of(diff) -> str | None:
        item = diff[0] if isinstance(diff, list) else diff
        for part in item[1:]:
            name = getattr(part, "name", None)
            table = getattr(part, "table", None)
            if table is not None and getattr(table, "name", None):
                return str(table.name)
            if isinstance(part, str) and part in TABLES:
                return part
            if name in TABLES:
                return str(name)
        return None

    assert [diff for diff in diffs if table_of(diff) in TABLES] == []
