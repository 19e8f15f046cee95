"""Issue 15, F4: a backup code is an argon2 check like a password, with the same bounded wait."""

from __future__ import annotations

import pytest

from tests.hashing import hash_threads_held

from .conftest import assert_error

pytestmark = pytest.mark.integration


def test_backup_code_without_a_free_hash_thread_answers_503_and_stays_usable(app, tfa, monkeypatch):
    monkeypatch.setitem(app.config, "ARGON2_MAX_CONCURRENT", 1)
    monkeypatch.setitem(app.config, "ARGON2_QUEUE_TIMEOUT", 0.3)
    enrolled = tfa.enroll()
    mfa_token = tfa.challenge()
    with hash_threads_held(app):
        refused = tfa.verify(mfa_token, enrolled.backup_codes[0])
    assert_error(refused, 503, "service_unavailable")
    assert refused.headers["Retry-After"] == "1"
    # neither the challenge nor the code was spent, and nothing was counted as a failure
    accepted = tfa.verify(mfa_token, enrolled.backup_codes[0])
    assert accepted.status_code == 200, accepted.json
