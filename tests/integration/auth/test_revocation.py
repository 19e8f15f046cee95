"""Logout, revoke, logout-all and session delete take effect at once, and survive Redis faults."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis as redis_lib

from auth_microservice_app.identity.revocation import rebuild_blocklist
from auth_microservice_app.utils.redis_client import BLOCKLIST_WARM_KEY
from tests.conftest import TEST_DATABASE_URL, make_app

pytestmark = pytest.mark.integration
ME = "/api/v1/auth/me"
REFRESH = "/api/v1/auth/refresh"


def assert_revoked(client, auth, access_token: str) -> None:
    response = client.get(ME, headers=auth.bearer(access_token))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_revoked"


def test_logout_revokes_this_sessions_tokens_at_once(auth, client):
    tokens = auth.signup_and_login()
    other = auth.login()
    response = client.post("/api/v1/auth/logout", headers=auth.bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert_revoked(client, auth, tokens["access_token"])
    assert client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"])).status_code == 401
    assert client.get(ME, headers=auth.bearer(other["access_token"])).status_code == 200


def test_logout_with_refresh_token_in_body(auth, client):
    tokens = auth.signup_and_login()
    response = client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": tokens["refresh_token"]},
        headers=auth.bearer(tokens["access_token"]),
    )
    assert response.status_code == 200
    assert client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"])).status_code == 401


def test_logout_all_revokes_every_session(auth, client):
    sessions = [auth.signup_and_login()] + [auth.login() for _ in range(2)]
    response = client.post(
        "/api/v1/auth/logout-all", headers=auth.bearer(sessions[0]["access_token"])
    )
    assert response.status_code == 200
    assert response.json["sessions_revoked"] == 3
    for tokens in sessions:
        assert_revoked(client, auth, tokens["access_token"])
        assert client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"])).status_code == 401


def test_revoke_an_access_token_kills_only_that_token(auth, client):
    tokens = auth.signup_and_login()
    refreshed = client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"])).json
    response = client.post(
        "/api/v1/auth/revoke",
        json={"token": tokens["access_token"]},
        headers=auth.bearer(refreshed["access_token"]),
    )
    assert response.status_code == 200
    assert_revoked(client, auth, tokens["access_token"])
    assert client.get(ME, headers=auth.bearer(refreshed["access_token"])).status_code == 200


def test_revoke_a_refresh_token_ends_its_session(auth, client):
    tokens = auth.signup_and_login()
    keep = auth.login()
    response = client.post(
        "/api/v1/auth/revoke",
        json={"token": tokens["refresh_token"]},
        headers=auth.bearer(keep["access_token"]),
    )
    assert response.status_code == 200
    assert client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"])).status_code == 401
    assert_revoked(client, auth, tokens["access_token"])
    assert client.get(ME, headers=auth.bearer(keep["access_token"])).status_code == 200


def test_revoke_answers_200_for_unknown_and_foreign_tokens_and_changes_nothing(auth, client):
    alice = auth.signup_and_login("alice@example.com")
    bob = auth.signup_and_login("bob@example.com")
    for token in ["garbage", bob["access_token"], bob["refresh_token"]]:
        response = client.post(
            "/api/v1/auth/revoke", json={"token": token}, headers=auth.bearer(alice["access_token"])
        )
        assert response.status_code == 200
    assert client.get(ME, headers=auth.bearer(bob["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=auth.bearer(bob["refresh_token"])).status_code == 200


def test_sessions_list_and_delete(auth, client):
    laptop = auth.signup_and_login()
    phone = auth.login()
    listing = client.get("/api/v1/auth/sessions", headers=auth.bearer(laptop["access_token"]))
    assert listing.status_code == 200
    rows = listing.json["sessions"]
    assert len(rows) == 2
    assert {tuple(sorted(row)) for row in rows} == {
        ("created_at", "current", "id", "ip", "last_used_at", "user_agent")
    }
    assert sum(row["current"] for row in rows) == 1
    assert all(row["user_agent"] == "pytest-browser" for row in rows)
    other = next(row for row in rows if not row["current"])
    deleted = client.delete(
        f"/api/v1/auth/sessions/{other['id']}", headers=auth.bearer(laptop["access_token"])
    )
    assert deleted.status_code == 204
    assert_revoked(client, auth, phone["access_token"])
    again = client.delete(
        f"/api/v1/auth/sessions/{other['id']}", headers=auth.bearer(laptop["access_token"])
    )
    assert again.status_code == 404


def test_another_users_session_is_404(auth, client):
    alice = auth.signup_and_login("alice@example.com")
    bob = auth.signup_and_login("bob@example.com")
    bob_sid = client.get("/api/v1/auth/sessions", headers=auth.bearer(bob["access_token"])).json[
        "sessions"
    ][0]["id"]
    response = client.delete(
        f"/api/v1/auth/sessions/{bob_sid}", headers=auth.bearer(alice["access_token"])
    )
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert client.get(ME, headers=auth.bearer(bob["access_token"])).status_code == 200
    assert (
        client.delete(
            "/api/v1/auth/sessions/not-a-uuid", headers=auth.bearer(alice["access_token"])
        ).status_code
        == 404
    )


def test_revoked_token_stays_revoked_after_redis_is_flushed(app, auth, client, redis_client):
    tokens = auth.signup_and_login()
    client.post("/api/v1/auth/logout", headers=auth.bearer(tokens["access_token"]))
    redis_client.flushdb()  # what a Redis restart without persistence looks like
    assert_revoked(client, auth, tokens["access_token"])  # answered by the database meanwhile
    with app.app_context():
        rebuild_blocklist()
    assert redis_client.exists(BLOCKLIST_WARM_KEY)
    assert_revoked(client, auth, tokens["access_token"])  # and by Redis once warm again


def test_an_empty_redis_is_rewarmed_in_the_background(app, auth, client, redis_client):
    tokens = auth.signup_and_login()
    client.post("/api/v1/auth/logout", headers=auth.bearer(tokens["access_token"]))
    redis_client.flushdb()
    assert_revoked(client, auth, tokens["access_token"])
    deadline = time.monotonic() + 10
    while not redis_client.exists(BLOCKLIST_WARM_KEY) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis_client.exists(BLOCKLIST_WARM_KEY)
    assert any(key.startswith("auth:revoked-sid:") for key in redis_client.keys("auth:*"))


class RedisProcess:
    """A real redis-server of our own, so a test can stop and restart it."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for this test"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis_lib.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
            except redis_lib.ConnectionError:
                time.sleep(0.05)
            else:
                return
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


def test_revocation_holds_while_redis_is_down_and_after_it_restarts(
    signing_key_pem, own_redis, auth
):
    app = make_app(
        signing_key_pem,
        SQLALCHEMY_DATABASE_URI=TEST_DATABASE_URL,
        REDIS_URL=own_redis.url,
        REDIS_RETRY_INTERVAL=0,
    )
    client = app.test_client()
    auth.client = client
    redis_lib.Redis.from_url(own_redis.url).set(BLOCKLIST_WARM_KEY, "1")
    before = auth.signup_and_login()
    during = auth.login()
    client.post("/api/v1/auth/logout", headers=auth.bearer(before["access_token"]))

    own_redis.stop()
    assert_revoked(client, auth, before["access_token"])  # the database answers
    assert client.get(ME, headers=auth.bearer(during["access_token"])).status_code == 200
    # a revocation while Redis is down is kept in the database and still honoured
    assert (
        client.post("/api/v1/auth/logout", headers=auth.bearer(during["access_token"])).status_code
        == 200
    )
    assert_revoked(client, auth, during["access_token"])
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json["status"] == "degraded"

    own_redis.start()  # back, and empty
    assert_revoked(client, auth, before["access_token"])
    assert_revoked(client, auth, during["access_token"])


def test_revocation_written_during_an_outage_forces_a_rebuild_when_redis_returns(
    signing_key_pem, own_redis, auth
):
    app = make_app(signing_key_pem, REDIS_URL=own_redis.url, REDIS_RETRY_INTERVAL=0)
    client = app.test_client()
    auth.client = client
    fast = redis_lib.Redis.from_url(own_redis.url)
    fast.set(BLOCKLIST_WARM_KEY, "1")
    tokens = auth.signup_and_login()
    gateway = app.extensions["redis"]
    # Simulate a partition: this process cannot reach Redis, which keeps its (warm) data.
    real_client = gateway.client
    gateway.client = redis_lib.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    assert (
        client.post("/api/v1/auth/logout", headers=auth.bearer(tokens["access_token"])).status_code
        == 200
    )
    assert gateway.lost_writes
    gateway.client = real_client
    # Redis still says "warm" but lacks the revocation: the first contact must distrust it.
    assert_revoked(client, auth, tokens["access_token"])
    assert_revoked(client, auth, tokens["access_token"])
    assert not gateway.lost_writes


def test_disabling_an_account_revokes_its_tokens_at_once(app, auth, client):
    tokens = auth.signup_and_login()
    result = app.test_cli_runner().invoke(args=["auth", "disable-user", "ALICE@example.com"])
    assert result.exit_code == 0, result.output
    assert "1 session(s) revoked" in result.output
    assert_revoked(client, auth, tokens["access_token"])
    assert client.post(REFRESH, headers=auth.bearer(tokens["refresh_token"])).status_code == 401
    login = client.post(
        "/api/v1/auth/login",
        json={"email": "alice@example.com", "password": "correct horse battery staple"},
    )
    assert login.status_code == 403
    assert login.json["error"]["code"] == "account_disabled"


def test_an_operator_can_sign_an_account_out_everywhere(app, auth, client):
    first = auth.signup_and_login()
    second = auth.login()
    result = app.test_cli_runner().invoke(args=["auth", "revoke-sessions", "alice@example.com"])
    assert "2 session(s) revoked" in result.output
    for tokens in (first, second):
        assert_revoked(client, auth, tokens["access_token"])
    unknown = app.test_cli_runner().invoke(args=["auth", "revoke-sessions", "ghost@example.com"])
    assert unknown.exit_code != 0
