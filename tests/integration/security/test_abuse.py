"""Issue 15: no single client degrades everyone else.

F1: the log redaction ran a quadratic pattern over every request's path and query; ~4 KB URLs
to any path (health probes and 404s included) cost a second each. Now the path and query are
clipped before they are redacted, once (the pattern itself is linear: tests/unit/test_logging.py).
"""

from __future__ import annotations

import logging

import pytest

pytestmark = pytest.mark.integration


def test_a_long_url_is_clipped_before_it_is_logged(client, caplog):
    caplog.set_level(logging.INFO, logger="auth_microservice_app.access")
    path = "/health/live/" + "a" * 8000
    response = client.get(path + "?" + "token" * 1600)
    assert response.status_code == 404
    [line] = [r for r in caplog.records if r.name == "auth_microservice_app.access"]
    assert len(line.path) < 300 and line.path.endswith("more]")
    assert len(line.query) < 300
