"""The squatter of finding 1 (issue 14): an account registered on someone else's address,
with everything he could hang on it before the owner proves her mailbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyotp
from sqlalchemy import func, select

from auth_microservice_app.extensions import db
from auth_microservice_app.identity.hashing import hash_password
from auth_microservice_app.models import (
    BackupCode,
    MfaChallengeRecord,
    OAuthAccount,
    TwoFactorCredential,
    User,
)
from auth_microservice_app.models.base import utcnow
from auth_microservice_app.two_factor.secrets import encryption_keys
from tests.conftest import AuthActions

API = "/api/v1/auth"
SQUATTER_PASSWORD = "squatter's own passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Squatter:
    """The attacker's side: an account on someone else's address, and what hangs on it."""

    def __init__(self, client: Any, app: Any, email: str) -> None:
        self.client, self.app, self.email = client, app, email
        self.auth = AuthActions(client)
        self.auth.register(email, SQUATTER_PASSWORD)
        self.tokens = self.auth.login(email, SQUATTER_PASSWORD)

    def attach_everything(self) -> None:
        """A provider link, an enabled authenticator with backup codes, a pending challenge."""
        with self.app.app_context():
            user = db.session.execute(select(User).where(User.email == self.email)).scalar_one()
            db.session.add(OAuthAccount(user_id=user.id, provider="github", subject="squatter-42"))
            secret = pyotp.random_base32()
            sealed = encryption_keys().encrypt(secret, associated_data=f"totp-secret:{user.id}")
            db.session.add(
                TwoFactorCredential(user_id=user.id, secret_ciphertext=sealed, enabled_at=utcnow())
            )
            db.session.add(BackupCode(user_id=user.id, code_hash=hash_password("abcdefgh")))
            now = utcnow()
            db.session.add(
                MfaChallengeRecord(
                    jti="squatter-challenge",
                    user_id=user.id,
                    amr=["pwd"],
                    created_at=now,
                    expires_at=now + timedelta(minutes=5),
                )
            )
            db.session.commit()

    def what_is_left(self) -> dict[str, int]:
        with self.app.app_context():
            user = db.session.execute(select(User).where(User.email == self.email)).scalar_one()

            def count(model: Any) -> int:
                return int(
                    db.session.execute(
                        select(func.count()).select_from(model).where(model.user_id == user.id)
                    ).scalar_one()
                )

            return {
                "provider_links": count(OAuthAccount),
                "two_factor": count(TwoFactorCredential),
                "backup_codes": count(BackupCode),
                "challenges": count(MfaChallengeRecord),
                "has_password": int(user.password_hash is not None),
            }

    def assert_locked_out(self) -> None:
        refresh = self.client.post(
            f"{API}/refresh", json={"refresh_token": self.tokens["refresh_token"]}
        )
        assert refresh.status_code == 401, refresh.json
        sessions = self.client.get(f"{API}/sessions", headers=bearer(self.tokens["access_token"]))
        assert sessions.status_code == 401
        login = self.client.post(
            f"{API}/login", json={"email": self.email, "password": SQUATTER_PASSWORD}
        )
        assert login.status_code == 401
        assert login.json["error"]["code"] == "invalid_credentials"
