"""Integration tests talk to real PostgreSQL and Redis: every one gets the run's database.

Many never ask for ``app`` yet use the database by URL (gunicorn, celery and CLI subprocesses,
the deploy-contract and outage fixtures), so the database is made for all of them here rather
than in the root conftest, where it would be made for ``pytest tests/unit`` too.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _integration_database(_run_database: None) -> None:
    """Every integration test may use TEST_DATABASE_URL, whether or not it asks for ``app``."""
