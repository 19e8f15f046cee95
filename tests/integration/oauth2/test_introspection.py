"""`POST /oauth2/introspect` (RFC 7662): active only while nothing says otherwise."""

from __future__ import annotations

import time

import jwt
import pytest

from auth_microservice_app.identity import accounts, clients

from .conftest import create, introspect, service_token

BEARER = "Bearer {}"


def test_a_users_access_token_is_active_with_its_claims(app, client, auth, gateway):
    tokens = auth.signup_and_login()
    answer = introspect(client, gateway, tokens["access_token"])
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert answer["active"] is True
    assert answer["token_type"] == "Bearer"
    for name in ("sub", "client_id", "iss", "aud", "exp", "iat", "nbf", "jti", "sid", "roles"):
        assert answer[name] == claims[name], name
    assert answer["client_id"] == app.config["FIRST_PARTY_CLIENT_ID"]
    assert answer["username"] == "alice@example.com"


def test_logout_makes_the_token_inactive_at_once(client, auth, gateway):
    tokens = auth.signup_and_login()
    client.post("/api/v1/auth/logout", headers=auth.bearer(tokens["access_token"]))
    assert introspect(client, gateway, tokens["access_token"]) == {"active": False}


def test_disabling_the_user_makes_the_token_inactive(app, client, auth, gateway):
    tokens = auth.signup_and_login()
    with app.app_context():
        accounts.disable_user("alice@example.com")
    assert introspect(client, gateway, tokens["access_token"]) == {"active": False}


def test_a_service_token_is_active_with_its_scope(client, orders, gateway):
    token = service_token(client, orders, scope="orders:read")["access_token"]
    answer = introspect(client, gateway, token)
    assert answer["active"] is True
    assert answer["sub"] == answer["client_id"] == orders.client_id
    assert answer["scope"] == "orders:read"


def test_disabling_a_client_voids_its_tokens_and_enabling_does_not_revive_them(
    app, client, orders, gateway
):
    old = service_token(client, orders)["access_token"]
    with app.app_context():
        clients.set_disabled(orders.client_id, True)
    assert introspect(client, gateway, old) == {"active": False}
    with app.app_context():
        clients.set_disabled(orders.client_id, False)
    # a token of the second after the revocation instant (iat is in whole seconds)
    deadline = time.time() + 3
    while True:
        new = service_token(client, orders)["access_token"]
        if introspect(client, gateway, new)["active"] or time.time() > deadline:
            break
    assert introspect(client, gateway, new)["active"] is True
    assert introspect(client, gateway, old) == {"active": False}


def test_deleting_a_client_voids_its_tokens(app, client, orders, gateway):
    token = service_token(client, orders)["access_token"]
    with app.app_context():
        clients.delete_client(orders.client_id)
    assert introspect(client, gateway, token) == {"active": False}


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJ0eXBlIjoiYWNjZXNzIn0.", "x" * 5000],
    ids=["garbage", "three parts", "alg none", "huge"],
)
def test_anything_else_is_inactive(client, gateway, token):
    assert introspect(client, gateway, token) == {"active": False}


def test_refresh_and_mfa_tokens_are_never_active(client, auth, gateway):
    tokens = auth.signup_and_login()
    assert introspect(client, gateway, tokens["refresh_token"]) == {"active": False}
    hinted = introspect(client, gateway, tokens["refresh_token"], token_type_hint="refresh_token")
    assert hinted == {"active": False}


def test_an_expired_token_is_inactive(app, client, gateway, orders):
    app.config["SERVICE_TOKEN_EXPIRES"] = -5
    try:
        token = service_token(client, orders)["access_token"]
    finally:
        app.config["SERVICE_TOKEN_EXPIRES"] = 900
    assert introspect(client, gateway, token) == {"active": False}


def test_a_client_without_the_introspect_scope_is_refused(client, auth, orders):
    tokens = auth.signup_and_login()
    response = client.post(
        "/oauth2/introspect", data={"token": tokens["access_token"]}, headers=orders.basic()
    )
    assert response.status_code == 403
    assert response.json["error"] == "insufficient_scope"


def test_introspection_needs_client_authentication(client, auth):
    tokens = auth.signup_and_login()
    response = client.post("/oauth2/introspect", data={"token": tokens["access_token"]})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert "WWW-Authenticate" in response.headers


def test_an_unknown_hint_is_only_a_hint(client, auth, gateway):
    tokens = auth.signup_and_login()
    answer = introspect(client, gateway, tokens["access_token"], token_type_hint="id_token")
    assert answer["active"] is True


def test_a_missing_token_is_invalid_request(client, gateway):
    response = client.post("/oauth2/introspect", data={}, headers=gateway.basic())
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_revocation_holds_when_redis_has_forgotten_it(app, client, auth, gateway, redis_client):
    tokens = auth.signup_and_login()
    client.post("/api/v1/auth/logout", headers=auth.bearer(tokens["access_token"]))
    service = create(app, "billing", ("billing",))
    service_access = service_token(client, service)["access_token"]
    with app.app_context():
        clients.set_disabled(service.client_id, True)
    redis_client.flushdb()  # a Redis restart without persistence: the database answers
    assert introspect(client, gateway, tokens["access_token"]) == {"active": False}
    assert introspect(client, gateway, service_access) == {"active": False}


def test_revocation_holds_while_redis_is_down(make_other_app, auth, gateway):
    other = make_other_app(REDIS_URL="redis://127.0.0.1:1/0", REDIS_RETRY_INTERVAL=60)
    client = other.test_client()
    auth.client = client
    tokens = auth.signup_and_login()
    assert introspect(client, gateway, tokens["access_token"])["active"] is True
    client.post("/api/v1/auth/logout", headers=auth.bearer(tokens["access_token"]))
    assert introspect(client, gateway, tokens["access_token"]) == {"active": False}


def test_the_hot_path_is_one_redis_round_trip_and_no_query(app, client, auth, gateway):
    from sqlalchemy import event

    from auth_microservice_app.extensions import db

    tokens = auth.signup_and_login()
    introspect(client, gateway, tokens["access_token"])  # the client's record is now cached
    round_trips: list[object] = []
    queries: list[str] = []
    gateway_redis = app.extensions["redis"]
    original = gateway_redis.run

    def counting(operation):
        round_trips.append(operation)
        return original(operation)

    def on_query(conn, cursor, statement, *args):
        queries.append(statement)

    gateway_redis.run = counting
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", on_query)
    try:
        assert introspect(client, gateway, tokens["access_token"])["active"] is True
    finally:
        gateway_redis.run = original
        event.remove(engine, "before_cursor_execute", on_query)
    assert len(round_trips) == 1
    assert queries == []
