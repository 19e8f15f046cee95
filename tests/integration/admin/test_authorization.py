"""Who may call `/api/v1/admin`: the attacks first (a user, a demoted admin, a stale or
single-factor token), then the guards that keep the service administrable."""

from __future__ import annotations

import pytest

from tests.integration.admin.conftest import (
    ADMIN,
    Admin,
    assert_error,
    enable_two_factor,
    sign_in_with_backup_code,
    user_id,
)

pytestmark = pytest.mark.integration
NOBODY = "00000000-0000-4000-8000-000000000000"


def admin_calls(app) -> list[tuple[str, str]]:
    """(method, path) of every admin route, path parameters filled in."""
    calls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(ADMIN):
            continue
        path = rule.rule.replace("<user_id>", NOBODY).replace("<client_id>", "svc_nobody")
        calls += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return calls


def test_the_admin_routes_are_those_of_the_contract(app):
    assert len(admin_calls(app)) == 11


def test_a_user_without_the_admin_role_gets_403_on_every_admin_route(app, client, auth):
    tokens = auth.signup_and_login("mallory@example.com", verified=True)
    for method, path in admin_calls(app):
        response = client.open(
            path, method=method, json={}, headers=auth.bearer(tokens["access_token"])
        )
        assert response.status_code == 403, (method, path, response.json)
        assert response.json["error"]["code"] == "forbidden"


def test_every_admin_route_needs_a_token(app, client):
    for method, path in admin_calls(app):
        response = client.open(path, method=method, json={})
        assert_error(response, 401, "authorization_required")


def test_a_role_in_a_forged_token_is_not_enough(app, client, auth):
    tokens = auth.signup_and_login("mallory@example.com", verified=True)
    head, body, _ = tokens["access_token"].split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["roles"] = ["user", "admin"]
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{head}.{forged_body}.{tokens['access_token'].split('.')[2]}"
    assert_error(client.get(ADMIN + "/users", headers=auth.bearer(forged)), 401, "token_invalid")


def test_a_demoted_admins_existing_token_stops_working_at_once(client, auth, admin):
    other = Admin(client, auth, "second@example.com")
    assert other.get("/users").status_code == 200
    response = admin.patch(f"/users/{other.id}", {"roles": ["user"]})
    assert response.status_code == 200, response.json
    assert response.json["user"]["roles"] == ["user"]
    # no 15-minute tail: the very next request with the old token is refused
    assert_error(other.get("/users"), 401, "token_revoked")
    refresh = client.post(
        "/api/v1/auth/refresh", headers=auth.bearer(other.tokens["refresh_token"])
    )
    assert refresh.status_code == 401
    # signing in again gives a token without the role, refused as any user's
    other.tokens = auth.login(other.email)
    assert_error(other.get("/users"), 403, "forbidden")


def test_a_disabled_admins_token_stops_working_at_once(client, auth, admin):
    other = Admin(client, auth, "second@example.com")
    assert admin.patch(f"/users/{other.id}", {"disabled": True}).status_code == 200
    assert_error(other.get("/users"), 401, "token_revoked")


def test_gaining_a_role_keeps_the_sessions(client, auth, admin):
    tokens = auth.signup_and_login("bob@example.com", verified=True)
    bob = user_id(client, "bob@example.com")
    assert admin.patch(f"/users/{bob}", {"roles": ["user", "support"]}).status_code == 200
    assert (
        client.get("/api/v1/auth/me", headers=auth.bearer(tokens["access_token"])).status_code
        == 200
    )
    refreshed = client.post("/api/v1/auth/refresh", headers=auth.bearer(tokens["refresh_token"]))
    assert refreshed.status_code == 200
    me = client.get("/api/v1/auth/me", headers=auth.bearer(refreshed.json["access_token"]))
    assert me.json["user"]["roles"] == ["user", "support"]


def test_a_change_needs_a_fresh_token_and_a_read_does_not(client, auth, admin):
    refreshed = client.post(
        "/api/v1/auth/refresh", headers=auth.bearer(admin.tokens["refresh_token"])
    ).json
    admin.tokens = refreshed
    assert admin.get("/users").status_code == 200
    assert_error(admin.patch(f"/users/{admin.id}", {"name": "Root"}), 401, "fresh_token_required")


def test_with_admin_require_2fa_a_single_factor_admin_is_refused_changes(make_other_app, auth):
    strict = make_other_app(ADMIN_REQUIRE_2FA=True)
    client = strict.test_client()
    root = Admin(client, type(auth)(client), "root@example.com")
    bob = Admin(client, type(auth)(client), "bob@example.com")
    assert root.get("/users").status_code == 200  # reading is allowed
    refused = root.patch(f"/users/{bob.id}", {"roles": ["user"]})
    assert_error(refused, 403, "forbidden")
    assert refused.json["error"]["details"] == {"reason": "second_factor_required"}
    assert bob.get("/users").status_code == 200  # nothing happened
    codes = enable_two_factor(client, root.tokens["access_token"])
    root.tokens = sign_in_with_backup_code(client, root.email, codes[0])
    assert root.patch(f"/users/{bob.id}", {"roles": ["user"]}).status_code == 200


def test_an_admin_cannot_lock_themselves_out(admin):
    assert_error(admin.patch(f"/users/{admin.id}", {"roles": ["user"]}), 409, "conflict")
    assert_error(admin.patch(f"/users/{admin.id}", {"disabled": True}), 409, "conflict")
    assert admin.get("/users").status_code == 200
    # other changes to oneself are fine
    assert (
        admin.patch(f"/users/{admin.id}", {"roles": ["user", "admin", "support"]}).status_code
        == 200
    )


def test_the_last_admin_cannot_be_removed(app, admin):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "set-roles", admin.email, "user"])
    assert result.exit_code == 1
    assert "last admin" in result.output
    result = runner.invoke(args=["users", "disable", admin.email])
    assert result.exit_code == 1
    assert admin.get("/users").status_code == 200
