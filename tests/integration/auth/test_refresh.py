"""Refresh-token rotation, reuse detection, concurrency, grace window and session lifetime."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import UserSession

pytestmark = pytest.mark.integration
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/auth/me"


def test_refresh_rotates_within_the_same_session(auth, client):
    first = auth.signup_and_login()
    response = client.post(REFRESH, headers=auth.bearer(first["refresh_token"]))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    second = response.json
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    sessions = client.get("/api/v1/auth/sessions", headers=auth.bearer(second["access_token"])).json
    assert len(sessions["sessions"]) == 1
    # the new refresh token works (in the body this time)
    assert client.post(REFRESH, json={"refresh_token": second["refresh_token"]}).status_code == 200


def test_refreshed_access_token_is_not_fresh(auth, client):
    import base64
    import json

    first = auth.signup_and_login()
    second = client.post(REFRESH, headers=auth.bearer(first["refresh_token"])).json
    payload = second["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["fresh"] is False


def test_reusing_a_spent_refresh_token_revokes_the_whole_session(auth, client):
    first = auth.signup_and_login()
    second = client.post(REFRESH, headers=auth.bearer(first["refresh_token"])).json
    reuse = client.post(REFRESH, headers=auth.bearer(first["refresh_token"]))
    assert reuse.status_code == 401
    assert reuse.json["error"]["code"] == "token_revoked"
    # the thief's and the user's current tokens of that session are dead, at once
    assert client.post(REFRESH, headers=auth.bearer(second["refresh_token"])).status_code == 401
    me = client.get(ME, headers=auth.bearer(second["access_token"]))
    assert me.status_code == 401
    assert me.json["error"]["code"] == "token_revoked"


def test_reuse_does_not_touch_other_sessions(auth, client):
    laptop = auth.signup_and_login()
    phone = auth.login()
    client.post(REFRESH, headers=auth.bearer(laptop["refresh_token"]))
    client.post(REFRESH, headers=auth.bearer(laptop["refresh_token"]))
    assert client.get(ME, headers=auth.bearer(phone["access_token"])).status_code == 200


def test_twenty_concurrent_refreshes_of_one_token_yield_exactly_one_pair(app, auth):
    tokens = auth.signup_and_login()

    def attempt(_: int) -> int:
        return (
            app.test_client()
            .post(REFRESH, headers=auth.bearer(tokens["refresh_token"]))
            .status_code
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(attempt, range(20)))
    assert statuses.count(200) == 1
    assert statuses.count(401) == 19


def test_grace_window_returns_the_same_successor_pair(app, auth, client):
    app.config["REFRESH_REUSE_GRACE_SECONDS"] = 10
    try:
        first = auth.signup_and_login()
        second = client.post(REFRESH, headers=auth.bearer(first["refresh_token"])).json
        retry = client.post(REFRESH, headers=auth.bearer(first["refresh_token"]))
        assert retry.status_code == 200
        assert retry.json == second  # the same pair, not a fork of the chain
        assert client.get(ME, headers=auth.bearer(second["access_token"])).status_code == 200
        third = client.post(REFRESH, headers=auth.bearer(second["refresh_token"])).json
        # an older token than the immediately previous one is still reuse
        late = client.post(REFRESH, headers=auth.bearer(first["refresh_token"]))
        assert late.status_code == 401
        assert client.get(ME, headers=auth.bearer(third["access_token"])).status_code == 401
    finally:
        app.config["REFRESH_REUSE_GRACE_SECONDS"] = 0


def test_grace_window_expires(app, auth, client):
    app.config["REFRESH_REUSE_GRACE_SECONDS"] = 5
    try:
        first = auth.signup_and_login()
        client.post(REFRESH, headers=auth.bearer(first["refresh_token"]))
        with time_machine.travel(timedelta(seconds=30)):
            late = client.post(REFRESH, headers=auth.bearer(first["refresh_token"]))
        assert late.status_code == 401
        assert late.json["error"]["code"] == "token_revoked"
    finally:
        app.config["REFRESH_REUSE_GRACE_SECONDS"] = 0


def test_rotation_cannot_extend_the_absolute_session_lifetime(app, auth, client):
    app.config["SESSION_MAX_AGE"] = 3600
    try:
        tokens = auth.signup_and_login()
        with time_machine.travel(timedelta(minutes=50)):
            tokens = client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"])).json
        with time_machine.travel(timedelta(minutes=61)):
            late = client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"]))
    finally:
        app.config["SESSION_MAX_AGE"] = 90 * 24 * 3600
    assert late.status_code == 401
    assert late.json["error"]["code"] == "token_expired"


def test_refresh_updates_last_used(app, auth, client):
    tokens = auth.signup_and_login()
    with time_machine.travel(timedelta(minutes=5)):
        client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"]))
    with app.app_context():
        session = db.session.execute(select(UserSession)).scalar_one()
        assert session.last_used_at - session.created_at >= timedelta(minutes=4)


def test_missing_refresh_token_is_authorization_required(client):
    response = client.post(REFRESH)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "authorization_required"


def _set_user(app, **values):
    from sqlalchemy import update

    from auth_microservice_app.models import User

    with app.app_context():
        db.session.execute(update(User).values(**values))
        db.session.commit()


def _claims(token: str) -> dict:
    import base64
    import json

    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_refresh_of_a_disabled_account_is_refused_without_spending_the_token(app, auth, client):
    tokens = auth.signup_and_login()
    _set_user(app, is_active=False)  # disabled behind the service's back: sessions still open
    refused = client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"]))
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "account_disabled"
    _set_user(app, is_active=True)
    # the chain did not move and nothing counted as reuse: the same token still rotates
    again = client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"]))
    assert again.status_code == 200


def test_refreshed_tokens_carry_the_users_current_claims(app, auth, client):
    from datetime import UTC, datetime

    tokens = auth.signup_and_login()
    assert _claims(tokens["access_token"])["email_verified"] is False
    _set_user(app, roles=["user", "admin"], email_verified_at=datetime.now(UTC))
    pair = client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"])).json
    for token in (pair["access_token"], pair["refresh_token"]):
        claims = _claims(token)
        assert claims["roles"] == ["user", "admin"]
        assert claims["email_verified"] is True
        assert claims["email"] == "alice@example.com"
        assert claims["sid"] == _claims(tokens["access_token"])["sid"]
