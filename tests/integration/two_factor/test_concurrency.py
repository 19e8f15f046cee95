"""Concurrent second steps: one code, or one mfa_token, yields exactly one token pair.

Ten threads, each with its own test client (own app context, own database connection), are
released together by a barrier and race to spend the same thing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from auth_microservice_app.extensions import db
from tests.concurrency import race
from tests.conftest import AuthActions

from .conftest import BASE, TwoFactor

# No throttle: losers must answer for the reason they lost, not for a wait they caused.
pytestmark = [pytest.mark.integration, pytest.mark.config(LOGIN_THROTTLE_ENABLED=False)]
THREADS = 10


@pytest.fixture
def flow(configured_client, clock) -> TwoFactor:
    client = configured_client
    flow = TwoFactor(client, AuthActions(client), clock)
    flow.app = client.application  # type: ignore[attr-defined]
    return flow


def outcome(responses: list[Any]) -> Counter:
    return Counter(
        "ok" if r.status_code == 200 else f"{r.status_code} {r.json['error']['code']}"
        for r in responses
    )


def session_count(app: Any) -> int:
    with app.app_context():
        return int(db.session.execute(text("SELECT count(*) FROM user_sessions")).scalar_one())


def verify(token: str, code: str) -> Callable[[Any], Any]:
    return lambda client: client.post(BASE + "/verify", json={"mfa_token": token, "code": code})


def test_one_totp_code_in_parallel_signs_in_once(flow):
    enrolled = flow.enroll()
    tokens = [flow.challenge() for _ in range(THREADS)]
    code = flow.next_code(enrolled.secret)
    sessions = session_count(flow.app)
    results = race(flow.app, [verify(token, code) for token in tokens])
    assert outcome(results) == Counter({"ok": 1, "401 invalid_mfa_code": THREADS - 1})
    assert session_count(flow.app) == sessions + 1


def test_one_mfa_token_in_parallel_signs_in_once(flow):
    enrolled = flow.enroll()
    token = flow.challenge()
    sessions = session_count(flow.app)
    results = race(flow.app, [verify(token, code) for code in enrolled.backup_codes])
    assert outcome(results) == Counter({"ok": 1, "401 token_invalid": THREADS - 1})
    assert session_count(flow.app) == sessions + 1
    # only the winner's backup code was spent: the losers' transactions rolled back
    assert flow.status(enrolled.access_token)["backup_codes_remaining"] == THREADS - 1


def test_one_mfa_token_and_one_code_in_parallel_signs_in_once(flow):
    enrolled = flow.enroll()
    token = flow.challenge()
    code = flow.next_code(enrolled.secret)
    results = race(flow.app, [verify(token, code) for _ in range(THREADS)])
    counts = outcome(results)
    assert counts["ok"] == 1
    # a loser either found the token spent or (first) the code's step used: both are 401
    assert set(counts) <= {"ok", "401 token_invalid", "401 invalid_mfa_code"}
    assert sum(counts.values()) == THREADS


def test_one_backup_code_in_parallel_signs_in_once(flow):
    enrolled = flow.enroll()
    tokens = [flow.challenge() for _ in range(THREADS)]
    code = enrolled.backup_codes[0]
    results = race(flow.app, [verify(token, code) for token in tokens])
    assert outcome(results) == Counter({"ok": 1, "401 invalid_mfa_code": THREADS - 1})
    assert flow.status(enrolled.access_token)["backup_codes_remaining"] == THREADS - 1


def test_parallel_backup_code_regeneration_leaves_one_set(flow):
    enrolled = flow.enroll()
    bearer = AuthActions.bearer(enrolled.access_token)

    def regenerate(code: str) -> Callable[[Any], Any]:
        return lambda client: client.post(
            BASE + "/backup-codes", json={"code": code}, headers=bearer
        )

    results = race(flow.app, [regenerate(code) for code in enrolled.backup_codes[:5]])
    winners = [r for r in results if r.status_code == 200]
    assert len(winners) >= 1
    assert flow.status(enrolled.access_token)["backup_codes_remaining"] == 10
    with flow.app.app_context():
        total = db.session.execute(text("SELECT count(*) FROM two_factor_backup_codes"))
        assert total.scalar_one() == 10
