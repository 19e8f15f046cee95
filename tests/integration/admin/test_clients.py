"""Service clients through the admin API: the secret once, deletion revokes, actor recorded."""

from __future__ import annotations

import pytest

from tests.integration.admin.conftest import assert_error

pytestmark = pytest.mark.integration


def test_create_list_and_delete_a_client(client, admin):
    created = admin.post("/clients", {"name": "orders", "scopes": ["orders:read"]})
    assert created.status_code == 201, created.json
    assert created.headers["Cache-Control"] == "no-store"
    client_id, secret = created.json["client_id"], created.json["client_secret"]
    assert created.json["scopes"] == ["orders:read"] and secret
    token = client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert token.status_code == 200, token.json
    listed = admin.get("/clients").json
    assert [c["client_id"] for c in listed["items"]] == [client_id]
    assert listed["next_cursor"] is None
    assert "client_secret" not in listed["items"][0]
    assert admin.delete(f"/clients/{client_id}").status_code == 204
    assert admin.get("/clients").json["items"] == []
    again = client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert again.status_code == 401
    assert_error(admin.delete(f"/clients/{client_id}"), 404, "not_found")
    events = admin.get("/events", query_string={"type": "client_created"}).json["items"]
    assert events[0]["data"]["actor_id"] == admin.id


def test_a_client_needs_a_name_and_slug_scopes(admin):
    assert_error(admin.post("/clients", {"scopes": ["x"]}), 422, "validation_error")
    assert_error(
        admin.post("/clients", {"name": "x", "scopes": ["Not A Scope"]}), 422, "validation_error"
    )
