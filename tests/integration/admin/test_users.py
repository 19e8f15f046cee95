"""The user administration: listing, search, details, changes, sessions, 2FA reset, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import PASSWORD
from tests.integration.admin.conftest import (
    assert_error,
    enable_two_factor,
    set_roles,
    user_id,
)

pytestmark = pytest.mark.integration


def register(client, email: str, name: str | None = None) -> str:
    body = {"email": email, "password": PASSWORD} | ({"name": name} if name else {})
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    return user_id(client, email)


def emails(response) -> list[str]:
    assert response.status_code == 200, response.json
    return [item["email"] for item in response.json["items"]]


def test_the_listing_pages_through_every_user_in_email_order(client, admin):
    for email in ("dora@x.io", "Carol@x.io", "bob@x.io", "alice@x.io"):
        register(client, email)
    seen, cursor, pages = [], None, 0
    while True:
        response = admin.get(
            "/users", query_string={"limit": 2} | ({"cursor": cursor} if cursor else {})
        )
        seen += emails(response)
        pages += 1
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert seen == ["alice@x.io", "bob@x.io", "Carol@x.io", "dora@x.io", "root@example.com"]
    assert pages == 3
    item = admin.get("/users", query_string={"limit": 1}).json["items"][0]
    assert set(item) == {
        "id",
        "email",
        "name",
        "email_verified",
        "two_factor_enabled",
        "roles",
        "created_at",
        "updated_at",
        "disabled",
    }


def test_search_is_a_case_insensitive_prefix_of_email_or_name(client, admin):
    register(client, "alice@x.io", "Zed Alpha")
    register(client, "bob@x.io", "Alina")
    register(client, "carol@x.io", "Bob")
    register(client, "a_b@x.io")
    assert emails(admin.get("/users", query_string={"query": "AL"})) == ["alice@x.io", "bob@x.io"]
    assert emails(admin.get("/users", query_string={"query": "bo"})) == ["bob@x.io", "carol@x.io"]
    # LIKE wildcards are literal characters
    assert emails(admin.get("/users", query_string={"query": "a_"})) == ["a_b@x.io"]
    assert emails(admin.get("/users", query_string={"query": "%"})) == []
    assert emails(admin.get("/users", query_string={"query": "zed"})) == ["alice@x.io"]


def test_filters_by_role_and_status(client, auth, admin):
    register(client, "alice@x.io")
    register(client, "bob@x.io")
    register(client, "carol@x.io")
    auth.mark_verified("bob@x.io")
    set_roles(client, "carol@x.io", ["user", "support"])
    admin.patch(f"/users/{user_id(client, 'carol@x.io')}", {"disabled": True})
    assert emails(admin.get("/users", query_string={"role": "support"})) == ["carol@x.io"]
    assert emails(admin.get("/users", query_string={"role": "admin"})) == ["root@example.com"]
    assert emails(admin.get("/users", query_string={"status": "disabled"})) == ["carol@x.io"]
    assert emails(admin.get("/users", query_string={"status": "unverified"})) == ["alice@x.io"]
    assert emails(admin.get("/users", query_string={"status": "active"})) == [
        "bob@x.io",
        "root@example.com",
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 201},
        {"cursor": "not a cursor"},
        {"cursor": "W10"},
        {"status": "gone"},
        {"role": "Admin"},
        {"surprise": "1"},
    ],
)
def test_a_wrong_listing_query_is_a_validation_error(admin, query):
    assert_error(admin.get("/users", query_string=query), 422, "validation_error")


def test_details_show_the_sign_in_facts(client, auth, admin):
    tokens = auth.signup_and_login("alice@x.io")
    auth.login("alice@x.io")
    alice = user_id(client, "alice@x.io")
    client.post("/api/v1/auth/logout", headers=auth.bearer(tokens["access_token"]))
    user = admin.get(f"/users/{alice}").json["user"]
    assert user["email"] == "alice@x.io"
    assert user["disabled"] is False
    assert user["providers"] == [] and user["passkeys"] == []
    assert user["active_sessions"] == 1
    assert user["last_login_at"].endswith("Z")
    assert_error(admin.get("/users/00000000-0000-4000-8000-000000000000"), 404, "not_found")
    assert_error(admin.get("/users/not-a-uuid"), 404, "not_found")


def test_changes_apply_and_are_security_events_with_the_actor(client, auth, admin):
    alice = register(client, "alice@x.io")
    response = admin.patch(
        f"/users/{alice}", {"name": "Alice", "email_verified": True, "roles": ["user", "support"]}
    )
    assert response.status_code == 200, response.json
    user = response.json["user"]
    assert (user["name"], user["email_verified"], user["roles"]) == (
        "Alice",
        True,
        ["user", "support"],
    )
    events = admin.get("/events", query_string={"user_id": alice}).json["items"]
    by_type = {event["event"]: event for event in events}
    assert by_type["roles_changed"]["data"]["actor_id"] == admin.id
    assert by_type["roles_changed"]["data"]["previous_roles"] == ["user"]
    assert by_type["user_updated"]["data"]["fields"] == ["email_verified", "name"]
    assert_error(admin.patch(f"/users/{alice}", {}), 422, "validation_error")
    assert_error(admin.patch(f"/users/{alice}", {"roles": ["Not A Slug"]}), 422, "validation_error")
    assert_error(admin.patch(f"/users/{alice}", {"email": "x@y.z"}), 422, "validation_error")


def test_disabling_signs_the_user_out_and_enabling_lets_them_back(client, auth, admin):
    tokens = auth.signup_and_login("alice@x.io")
    alice = user_id(client, "alice@x.io")
    assert admin.patch(f"/users/{alice}", {"disabled": True}).json["user"]["disabled"] is True
    me = client.get("/api/v1/auth/me", headers=auth.bearer(tokens["access_token"]))
    assert_error(me, 401, "token_revoked")
    login = client.post("/api/v1/auth/login", json={"email": "alice@x.io", "password": PASSWORD})
    assert_error(login, 403, "account_disabled")
    assert admin.patch(f"/users/{alice}", {"disabled": False}).status_code == 200
    assert auth.login("alice@x.io")["access_token"]
    kinds = [
        e["event"] for e in admin.get("/events", query_string={"user_id": alice}).json["items"]
    ]
    assert "account_disabled" in kinds and "account_enabled" in kinds


def test_sessions_are_listed_and_revoked(client, auth, admin):
    first = auth.signup_and_login("alice@x.io")
    second = auth.login("alice@x.io")
    alice = user_id(client, "alice@x.io")
    page = admin.get(f"/users/{alice}/sessions", query_string={"limit": 1})
    assert page.status_code == 200, page.json
    assert len(page.json["items"]) == 1 and page.json["next_cursor"]
    rest = admin.get(f"/users/{alice}/sessions", query_string={"cursor": page.json["next_cursor"]})
    assert len(rest.json["items"]) == 1 and rest.json["next_cursor"] is None
    assert {page.json["items"][0]["id"], rest.json["items"][0]["id"]}.__len__() == 2
    assert admin.delete(f"/users/{alice}/sessions").status_code == 204
    for tokens in (first, second):
        me = client.get("/api/v1/auth/me", headers=auth.bearer(tokens["access_token"]))
        assert_error(me, 401, "token_revoked")
    assert admin.get(f"/users/{alice}/sessions").json["items"] == []
    assert_error(
        admin.delete("/users/00000000-0000-4000-8000-000000000000/sessions"), 404, "not_found"
    )


def test_a_two_factor_reset_removes_it_signs_out_and_tells_the_user(client, auth, admin, mailbox):
    tokens = auth.signup_and_login("alice@x.io", verified=True)
    enable_two_factor(client, tokens["access_token"])
    alice = user_id(client, "alice@x.io")
    assert admin.post(f"/users/{alice}/2fa/reset").status_code == 204
    me = client.get("/api/v1/auth/me", headers=auth.bearer(tokens["access_token"]))
    assert_error(me, 401, "token_revoked")
    # the first factor alone signs in now: no challenge, a token pair
    assert "access_token" in auth.login("alice@x.io")
    assert admin.get(f"/users/{alice}").json["user"]["two_factor_enabled"] is False
    notices = [m for m in mailbox.to("alice@x.io") if "reset" in m["Subject"]]
    assert len(notices) == 1
    assert "administrator removed two-factor" in mailbox.text(notices[0])
    assert_error(admin.post(f"/users/{alice}/2fa/reset"), 409, "conflict")
    event = admin.get("/events", query_string={"type": "two_factor_reset"}).json["items"][0]
    assert event["user_id"] == alice and event["data"]["actor_id"] == admin.id


def test_events_of_every_user_page_and_filter(client, auth, admin):
    for email in ("alice@x.io", "bob@x.io"):
        auth.signup_and_login(email)
    everyone = admin.get("/events", query_string={"limit": 200}).json["items"]
    assert {e["user_id"] for e in everyone} >= {
        user_id(client, "alice@x.io"),
        user_id(client, "bob@x.io"),
    }
    ids = [e["id"] for e in everyone]
    assert ids == sorted(ids, reverse=True)
    first = admin.get("/events", query_string={"limit": 2})
    second = admin.get("/events", query_string={"limit": 2, "cursor": first.json["next_cursor"]})
    assert [e["id"] for e in first.json["items"] + second.json["items"]] == ids[:4]
    logins = admin.get("/events", query_string={"type": "login_succeeded"}).json["items"]
    assert len(logins) == 3 and {e["event"] for e in logins} == {"login_succeeded"}
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert admin.get("/events", query_string={"since": future}).json["items"] == []
    assert_error(admin.get("/events", query_string={"type": "DROP TABLE"}), 422, "validation_error")
