"""The migrations build the schema the models expect, on PostgreSQL and on SQLite."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from auth_microservice_app.extensions import db

pytestmark = pytest.mark.integration


def test_migrated_postgres_schema_matches_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_the_revision_history_is_one_line(app):
    with app.app_context():
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
        assert len(script.get_heads()) == 1
        assert len(script.get_bases()) == 1


def test_flask_db_upgrade_and_downgrade_work_on_sqlite(tmp_path):
    env = {
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        "PATH": "",
    }
    flask = [sys.executable, "-m", "flask", "--app", "auth_microservice_app.app", "db"]
    for command in (["upgrade"], ["downgrade", "base"], ["upgrade"]):
        result = subprocess.run(
            [*flask, *command], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "fresh.db").exists()
