"""The retention purge: every kind goes in batches, nothing still useful goes, /metrics counts
it, and docs/operations.md's command runs as typed."""

from __future__ import annotations

import json
import shlex
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from auth_microservice_app.extensions import db
from auth_microservice_app.models import (
    EmailOutbox,
    EmailToken,
    OAuthState,
    RevokedToken,
    SecurityEvent,
    User,
)
from auth_microservice_app.models.base import utcnow
from auth_microservice_app.tasks.maintenance import KINDS, purge_expired

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def _count(model, *where):
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _seed(app, auth, *, how_many: int) -> None:
    """``how_many`` stale rows of each table the purge empties, and fresh ones that stay."""
    user = auth.register("keeper@example.com")
    auth.mark_verified("keeper@example.com")
    now = utcnow()
    old = now - timedelta(days=400)
    with app.app_context():
        uid = uuid.UUID(user["id"])
        for i in range(how_many):
            db.session.add(RevokedToken(jti=f"old-{i}", user_id=uid, expires_at=old))
            db.session.add(
                EmailToken(
                    user_id=uid,
                    purpose="magic_link",
                    token_hash=f"{i:064d}",
                    created_at=old,
                    expires_at=old,
                )
            )
            db.session.add(OAuthState(key=f"old-{i}", payload={}, expires_at=old))
            db.session.add(
                EmailOutbox(
                    kind="security_notice",
                    payload={},
                    status="sent",
                    processed_at=old,
                )
            )
            db.session.add(SecurityEvent(event="login_failed", occurred_at=old, data={}))
            db.session.add(User(email=f"stale{i}@example.com", created_at=old, roles=["user"]))
        db.session.add(RevokedToken(jti="fresh", user_id=uid, expires_at=now + timedelta(hours=1)))
        # an event naming an account that is gone (a request that raced its deletion)
        db.session.add(
            SecurityEvent(event="login_succeeded", user_id=uuid.uuid4(), ip="203.0.113.7", data={})
        )
        db.session.commit()
        db.session.execute(update(User).values(updated_at=old))
        db.session.commit()


def test_the_purge_removes_every_kind_in_batches_and_keeps_what_is_alive(app, auth):
    app.config["PURGE_BATCH_SIZE"] = 2  # five rows of each kind: three batches each
    try:
        _seed(app, auth, how_many=5)
        with app.app_context():
            removed = purge_expired()
            assert removed["revoked_tokens"] == 5
            assert removed["email_tokens"] == 5
            assert removed["oauth_states"] == 5
            assert removed["email_outbox"] == 5
            assert removed["unverified_accounts"] == 5
            assert removed["security_events"] == 5
            # the raced one, and the account_deleted events of the five purged accounts
            assert removed["anonymised_events"] == 6
            assert _count(RevokedToken) == 1
            assert _count(User) == 1
            anonymous = SecurityEvent.user_id.is_(None)
            assert _count(SecurityEvent, anonymous, SecurityEvent.ip.is_not(None)) == 0
    finally:
        app.config["PURGE_BATCH_SIZE"] = 1000


def test_metrics_count_the_purged_rows_by_kind(app, auth, client):
    _seed(app, auth, how_many=3)
    with app.app_context():
        purge_expired()
    text = client.get("/metrics").get_data(as_text=True)
    assert 'auth_purged_rows_total{kind="revoked_tokens"} 3.0' in text
    assert 'auth_purged_rows_total{kind="sessions"} 0.0' in text
    assert all(f'kind="{kind}"' in text for kind in KINDS)


def test_the_documented_purge_command_runs_as_typed(app, auth):
    _seed(app, auth, how_many=1)
    operations = (ROOT / "docs" / "operations.md").read_text()
    lines = [
        line
        for line in operations.split("```sh\n")[-1].split("```")[0].splitlines()
        if "maintenance purge" in line
    ]
    assert lines, "docs/operations.md shows the purge command in its last sh block"
    runner = app.test_cli_runner()
    for line in lines:
        words = shlex.split(line.split("  #")[0])
        assert words[:3] == ["flask", "--app", "auth_microservice_app.app"]
        result = runner.invoke(args=words[3:])
        assert result.exit_code == 0, f"{line}\n{result.output}"
        if "--json" in words:  # the second run: the first left nothing
            assert json.loads(result.output) == dict.fromkeys(KINDS, 0)
        else:
            assert "oauth_states         1" in result.output
