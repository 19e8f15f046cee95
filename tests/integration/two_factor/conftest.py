"""Two-factor test helpers: a frozen clock that tests move step by step, and enrolment."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
import time_machine
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, AuthActions

BASE = "/api/v1/2fa"
ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"
PERIOD = 30
#: The wrong code tests type. ``enroll`` and ``safe_secret`` re-roll the (random) secret in the
#: one-in-a-hundred-thousand case where it would be valid at some step a test may reach.
WRONG_CODE = "000000"


@pytest.fixture(autouse=True)
def clock() -> Iterator[Any]:
    """Time stands still 5 s into a TOTP step; ``clock.shift(30)`` moves to the next step.

    A code is accepted once, so a test that needs a fresh code moves the clock instead of
    sleeping (see :meth:`TwoFactor.next_code`).
    """
    start = (int(time.time()) // PERIOD) * PERIOD + 5
    with time_machine.travel(datetime.fromtimestamp(start, tz=UTC), tick=False) as traveller:
        yield traveller


@dataclass
class Enrolled:
    email: str
    access_token: str
    refresh_token: str
    secret: str
    backup_codes: list[str]


class TwoFactor:
    def __init__(self, client: FlaskClient, auth: AuthActions, clock: Any) -> None:
        self.client = client
        self.auth = auth
        self.clock = clock

    def next_code(self, secret: str) -> str:
        """The code of the next time step, after moving the clock there (never used before)."""
        self.clock.shift(PERIOD)
        return pyotp.TOTP(secret).now()

    def post(self, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = self.auth.bearer(token) if token else {}
        return self.client.post(BASE + path, headers=headers, **kwargs)

    def status(self, token: str) -> dict[str, Any]:
        response = self.client.get(BASE + "/status", headers=self.auth.bearer(token))
        assert response.status_code == 200, response.json
        return dict(response.json)

    def setup(self, token: str) -> dict[str, Any]:
        response = self.post("/setup", token)
        assert response.status_code == 200, response.json
        return dict(response.json)

    def safe_secret(self, token: str) -> str:
        """Set up, again if need be, until WRONG_CODE is wrong for the next 40 steps."""
        while True:
            secret = self.setup(token)["secret"]
            now = time.time()
            totp = pyotp.TOTP(secret)
            if all(totp.at(now + step * PERIOD) != WRONG_CODE for step in range(-5, 40)):
                return secret

    def enroll(self, email: str = "alice@example.com") -> Enrolled:
        tokens = self.auth.signup_and_login(email, verified=True)
        secret = self.safe_secret(tokens["access_token"])
        response = self.post("/enable", tokens["access_token"], json={"code": self.now(secret)})
        assert response.status_code == 200, response.json
        return Enrolled(
            email=email,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            secret=secret,
            backup_codes=response.json["backup_codes"],
        )

    @staticmethod
    def now(secret: str) -> str:
        return pyotp.TOTP(secret).now()

    def challenge(self, email: str = "alice@example.com", client: FlaskClient | None = None) -> str:
        response = (client or self.client).post(LOGIN, json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.json
        assert response.json["mfa_required"] is True, response.json
        return str(response.json["mfa_token"])

    def verify(self, mfa_token: str, code: str, client: FlaskClient | None = None) -> Any:
        return (client or self.client).post(
            BASE + "/verify", json={"mfa_token": mfa_token, "code": code}
        )


@pytest.fixture
def tfa(client: FlaskClient, auth: AuthActions, clock: Any) -> TwoFactor:
    return TwoFactor(client, auth, clock)


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code, response.json
