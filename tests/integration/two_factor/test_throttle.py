"""Wrong codes count toward the per-account throttle and RATELIMIT_2FA; passwords cannot block
the second step."""

from __future__ import annotations

import time

import pyotp
import pytest

from tests.conftest import PASSWORD, AuthActions

from .conftest import LOGIN, WRONG_CODE, TwoFactor, assert_error

# The throttle waits after 3 consecutive failures (1 s, then doubling).
pytestmark = [pytest.mark.integration, pytest.mark.config(LOGIN_THROTTLE_THRESHOLD=3)]
WRONG = WRONG_CODE


@pytest.fixture
def strict(configured_client, clock) -> TwoFactor:
    """An app whose throttle waits after 3 consecutive failures (1 s, then doubling)."""
    return TwoFactor(configured_client, AuthActions(configured_client), clock)


def next_step_code(secret: str) -> str:
    """A code of the next step, accepted by the window, without moving the clock."""
    return pyotp.TOTP(secret).at(int(time.time()) + 30)


def assert_throttled(response) -> None:
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1


def test_wrong_codes_are_throttled_after_the_threshold(strict):
    enrolled = strict.enroll()
    token = strict.challenge()
    for _ in range(3):
        assert_error(strict.verify(token, WRONG), 401, "invalid_mfa_code")
    code = next_step_code(enrolled.secret)
    assert_throttled(strict.verify(token, code))  # even the right code is not checked
    strict.clock.shift(2)  # the 1 s wait is over
    assert strict.verify(token, code).status_code == 200


def test_a_success_clears_the_count(strict):
    enrolled = strict.enroll()
    for _ in range(2):
        assert_error(strict.verify(strict.challenge(), WRONG), 401, "invalid_mfa_code")
    assert strict.verify(strict.challenge(), strict.next_code(enrolled.secret)).status_code == 200
    for _ in range(2):
        assert_error(strict.verify(strict.challenge(), WRONG), 401, "invalid_mfa_code")
    assert strict.verify(strict.challenge(), strict.next_code(enrolled.secret)).status_code == 200


def test_code_failures_count_toward_the_account_throttle(strict):
    strict.enroll()
    token = strict.challenge()
    for _ in range(3):
        assert_error(strict.verify(token, WRONG), 401, "invalid_mfa_code")
    login = strict.client.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD})
    assert_throttled(login)  # guessing codes also slows the password step


def test_wrong_passwords_cannot_lock_the_owner_out_of_the_second_step(strict):
    enrolled = strict.enroll()
    token = strict.challenge()  # the owner passed the first factor (or used a magic link)
    for _ in range(4):  # someone else hammers the password
        strict.client.post(LOGIN, json={"email": "alice@example.com", "password": "wrong pass!"})
    login = strict.client.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD})
    assert_throttled(login)
    assert strict.verify(token, strict.next_code(enrolled.secret)).status_code == 200


def test_a_new_mfa_token_does_not_reset_the_count(strict):
    strict.enroll()
    for _ in range(3):
        assert_error(strict.verify(strict.challenge(), WRONG), 401, "invalid_mfa_code")
    strict.clock.shift(2)  # the wait ends, the count stays: the next failure waits again
    assert_error(strict.verify(strict.challenge(), WRONG), 401, "invalid_mfa_code")
    login = strict.client.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD})
    assert_throttled(login)


def test_wrong_codes_at_disable_and_backup_codes_count_too(strict):
    enrolled = strict.enroll()
    access = enrolled.access_token
    wrong_code = strict.post("/disable", access, json={"password": PASSWORD, "code": WRONG})
    assert_error(wrong_code, 401, "invalid_mfa_code")
    wrong_password = strict.post("/disable", access, json={"password": "nope nope", "code": WRONG})
    assert_error(wrong_password, 401, "invalid_credentials")
    assert_error(
        strict.post("/backup-codes", access, json={"code": WRONG}), 401, "invalid_mfa_code"
    )
    good = next_step_code(enrolled.secret)
    assert_throttled(strict.post("/backup-codes", access, json={"code": good}))
    assert_throttled(strict.post("/disable", access, json={"password": PASSWORD, "code": good}))
    login = strict.client.post(LOGIN, json={"email": enrolled.email, "password": PASSWORD})
    assert_throttled(login)
    strict.clock.shift(2)
    assert strict.post("/backup-codes", access, json={"code": good}).status_code == 200


@pytest.mark.config(RATELIMIT_ENABLED=True, RATELIMIT_2FA="2/minute", LOGIN_THROTTLE_ENABLED=False)
def test_verify_has_its_own_rate_limit_per_mfa_token(configured_client, clock):
    client = configured_client
    flow = TwoFactor(client, AuthActions(client), clock)
    enrolled = flow.enroll()
    token = flow.challenge()
    first = flow.verify(token, WRONG)
    assert_error(first, 401, "invalid_mfa_code")
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert_error(flow.verify(token, WRONG), 401, "invalid_mfa_code")
    limited = flow.verify(token, flow.now(enrolled.secret))
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
