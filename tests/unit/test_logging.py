from __future__ import annotations

import logging
import time

import pytest

from auth_microservice_app.logging_setup import RedactionFilter, clip, redact_text


def test_free_text_credentials_are_redacted():
    line = (
        'body={"email": "a@b.c", "password": "hunter2hunter2"} '
        "Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2ln refresh_token=abc.def"
    )
    redacted = redact_text(line)
    assert "hunter2hunter2" not in redacted
    assert "eyJhbGciOi" not in redacted
    assert "abc.def" not in redacted
    assert "a@b.c" in redacted


def test_structured_extras_with_sensitive_keys_are_redacted():
    record = logging.makeLogRecord(
        {
            "msg": "login %s",
            "args": ("password=swordfish",),
            "new_password": "swordfish",
            "headers": {"Authorization": "Bearer x", "Accept": "json"},
        }
    )
    RedactionFilter().filter(record)
    assert "swordfish" not in record.getMessage()
    assert record.__dict__["new_password"] == "[REDACTED]"
    assert record.__dict__["headers"] == {"Authorization": "[REDACTED]", "Accept": "json"}


#: Runs of the characters each pattern's quantifiers range over, and the texts they look for:
#: what made the old patterns retry a run from each of its positions.
ADVERSARIAL_UNITS = ["a", "_", "token", "password", "eyJ-", "eyJa.", "bearer ", "x:", "'", '"']


def _best_time(text: str, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        redact_text(text)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("unit", ADVERSARIAL_UNITS)
def test_redaction_takes_linear_time_on_adversarial_input(unit):
    """8 KB costs about ten times 800 B (it cost a hundred times, a second, before)."""
    short = (unit * 800)[:800]
    long = (unit * 8000)[:8000]
    ratio = _best_time(long) / _best_time(short)
    assert ratio < 30, f"{unit!r}: 10x the text took {ratio:.0f}x the time"


def test_redaction_output_is_unchanged_by_the_linear_patterns():
    cases = {
        "token: abc": "token: [REDACTED]",
        "my_password=hunter2&x=1": "my_password=[REDACTED]&x=1",
        "refresh_token='abc def'": "refresh_token=[REDACTED]",
        "Authorization: Bearer abc.def": "Authorization: [REDACTED] [REDACTED]",
        "?code=xyz&state=s&other=1": "?code=[REDACTED]&state=[REDACTED]&other=1",
        "foo eyJhbGc.eyJzdWI.sig bar": "foo [REDACTED_JWT] bar",
        "passwordless login": "passwordless login",
        "x" * 50 + "_token=1": "x" * 50 + "_token=[REDACTED]",
    }
    assert {text: redact_text(text) for text in cases} == cases


def test_logged_request_text_is_clipped():
    assert clip("a" * 300) == "a" * 256 + "...[44 more]"
    assert clip("short") == "short"
    assert clip(None) is None
