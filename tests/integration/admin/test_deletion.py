"""An admin (or an operator's shell) deletes an account as `DELETE /me` does."""

from __future__ import annotations

from .conftest import ADMIN, Admin, assert_error, user_id


def test_an_admin_deletes_an_account_and_its_tokens_die_at_once(client, auth, admin, mailbox):
    victim = auth.signup_and_login("bob@example.com", verified=True)
    bob = user_id(client, "bob@example.com")

    response = admin.delete(f"/users/{bob}")
    assert response.status_code == 204, response.json

    assert_error(
        client.get("/api/v1/auth/me", headers=auth.bearer(victim["access_token"])),
        401,
        "token_revoked",
    )
    assert_error(admin.get(f"/users/{bob}"), 404, "not_found")
    assert mailbox.to("bob@example.com"), "the deleted user is told"
    events = admin.get("/events", query_string={"type": "account_deleted"}).json["items"]
    assert events and events[0]["data"]["actor_id"] == admin.id
    auth.register("bob@example.com")  # the address is free again


def test_an_admin_cannot_delete_their_own_account_here(client, auth, admin):
    assert_error(admin.delete(f"/users/{admin.id}"), 409, "conflict")
    assert admin.get(f"/users/{admin.id}").status_code == 200


def test_deleting_needs_a_fresh_token(client, auth, admin):
    auth.signup_and_login("carol@example.com", verified=True)
    carol = user_id(client, "carol@example.com")
    refreshed = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": admin.tokens["refresh_token"]}
    ).json
    stale = Admin.__new__(Admin)
    stale.client, stale.auth, stale.tokens = client, auth, refreshed
    assert_error(stale.delete(f"/users/{carol}"), 401, "fresh_token_required")
    assert client.get(ADMIN + f"/users/{carol}", headers=admin.headers).status_code == 200


def test_the_cli_deletes_an_account(app, client, auth):
    tokens = auth.signup_and_login("dave@example.com", verified=True)
    result = app.test_cli_runner().invoke(args=["users", "delete", "dave@example.com"])
    assert result.exit_code == 0, result.output
    assert_error(
        client.get("/api/v1/auth/me", headers=auth.bearer(tokens["access_token"])),
        401,
        "token_revoked",
    )
    missing = app.test_cli_runner().invoke(args=["users", "delete", "dave@example.com"])
    assert missing.exit_code == 1
    assert "Traceback" not in missing.output
