from __future__ import annotations

import logging

from auth_microservice_app.logging_setup import RedactionFilter, redact_text


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
