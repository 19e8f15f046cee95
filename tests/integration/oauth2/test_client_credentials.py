"""`POST /oauth2/token`: the client-credentials grant (RFC 6749 §4.4), RFC 9068 tokens."""

from __future__ import annotations

import jwt
import pytest

from auth_microservice_app.identity import clients

from .conftest import Client, create, service_token

ME = "/api/v1/auth/me"


def verify(client, token: str) -> tuple[dict, dict]:
    """(header, claims) of a token, verified with nothing but the published JWKS."""
    keys = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json)
    header = jwt.get_unverified_header(token)
    key = next(k for k in keys.keys if k.key_id == header["kid"])
    claims = jwt.decode(
        token, key, algorithms=[header["alg"]], audience="auth-service", issuer="https://auth.test"
    )
    return header, claims


def test_a_client_gets_an_rfc9068_token_with_http_basic(app, client, orders):
    response = client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=orders.basic()
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.config["SERVICE_TOKEN_EXPIRES"]
    assert body["scope"] == "orders:read orders:write"  # nothing asked: everything it holds
    assert "refresh_token" not in body

    header, claims = verify(client, body["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == claims["client_id"] == orders.client_id
    assert claims["scope"] == "orders:read orders:write"
    assert claims["exp"] - claims["iat"] == app.config["SERVICE_TOKEN_EXPIRES"]
    assert {"jti", "iat", "nbf"} <= claims.keys()
    assert "email" not in claims and "roles" not in claims


def test_a_client_may_authenticate_with_form_fields(client, orders):
    response = client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": orders.client_id,
            "client_secret": orders.secret,
            "scope": "orders:read",
        },
    )
    assert response.status_code == 200
    assert response.json["scope"] == "orders:read"


def test_a_requested_scope_narrows_and_another_scope_is_refused(client, orders):
    assert service_token(client, orders, scope="orders:write")["scope"] == "orders:write"
    response = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "orders:read admin"},
        headers=orders.basic(),
    )
    assert response.status_code == 400
    assert response.json["error"] == "invalid_scope"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "headers_for",
    [
        lambda c: c.basic("not-the-secret"),
        lambda c: Client("svc_nobody", c.secret).basic(),
        lambda c: {},
    ],
    ids=["wrong secret", "unknown client", "no credentials"],
)
def test_failed_client_authentication_is_401_and_tells_nothing_more(client, orders, headers_for):
    response = client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=headers_for(orders)
    )
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert orders.client_id not in response.get_data(as_text=True)
    # the same words whether the client exists or not: no enumeration of client ids
    assert response.json["error_description"] == (
        "The client cannot authenticate with methods: ['client_secret_basic', 'client_secret_post']"
    )


def test_other_grant_types_are_unsupported(client, orders):
    for grant in ("password", "authorization_code", "refresh_token"):
        response = client.post("/oauth2/token", data={"grant_type": grant}, headers=orders.basic())
        assert response.status_code == 400
        assert response.json["error"] == "unsupported_grant_type"


def test_a_service_token_is_not_a_user_session(client, orders):
    token = service_token(client, orders)["access_token"]
    response = client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_invalid"


def test_users_access_tokens_name_the_first_party_client(app, auth):
    tokens = auth.signup_and_login()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == app.config["FIRST_PARTY_CLIENT_ID"]
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"


def test_a_disabled_client_gets_no_token(app, client, orders):
    with app.app_context():
        clients.set_disabled(orders.client_id, True)
    response = client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=orders.basic()
    )
    assert response.status_code == 401


def test_the_secret_is_stored_only_as_a_digest(app, orders):
    from auth_microservice_app.models import ServiceClient

    with app.app_context():
        row = ServiceClient.query.filter_by(client_id=orders.client_id).one()
        assert orders.secret not in (row.secret_hash, row.previous_secret_hash)
        assert len(row.secret_hash) == 64


def test_last_used_is_recorded(app, client, orders):
    from auth_microservice_app.models import ServiceClient

    service_token(client, orders)
    with app.app_context():
        row = ServiceClient.query.filter_by(client_id=orders.client_id).one()
        assert row.last_used_at is not None


def test_a_rotated_secret_overlaps_with_the_old_one(app, client, orders):
    with app.app_context():
        new_secret = clients.rotate_secret(orders.client_id)
    assert service_token(client, Client(orders.client_id, new_secret))
    assert service_token(client, orders)  # the old one, within CLIENT_SECRET_ROTATION_OVERLAP


def test_without_overlap_the_old_secret_stops_at_once(app, client, orders):
    app.config["CLIENT_SECRET_ROTATION_OVERLAP"] = 0
    try:
        with app.app_context():
            new_secret = clients.rotate_secret(orders.client_id)
    finally:
        app.config["CLIENT_SECRET_ROTATION_OVERLAP"] = 86400
    assert service_token(client, Client(orders.client_id, new_secret))
    response = client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=orders.basic()
    )
    assert response.status_code == 401


def test_scopes_must_be_slugs(app):
    from auth_microservice_app.errors import ValidationFailed

    with app.app_context(), pytest.raises(ValidationFailed):
        create(app, "bad", ("Orders Read",))
