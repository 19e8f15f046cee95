"""Service clients for the `/oauth2` tests, made the way an operator makes them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auth_microservice_app.identity import clients


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str

    def basic(self, secret: str | None = None) -> dict[str, str]:
        raw = f"{self.client_id}:{secret or self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def create(app: Flask, name: str = "orders", scopes: tuple[str, ...] = ()) -> Client:
    with app.app_context():
        record, secret = clients.create_client(name, scopes)
        return Client(record.client_id, secret)


@pytest.fixture
def orders(app: Flask) -> Client:
    """A service that may ask for two scopes."""
    return create(app, "orders", ("orders:read", "orders:write"))


@pytest.fixture
def gateway(app: Flask) -> Client:
    """A resource server that checks tokens with the introspection endpoint."""
    return create(app, "gateway", ("introspect",))


def service_token(client: FlaskClient, who: Client, **form: str) -> dict[str, Any]:
    response = client.post(
        "/oauth2/token", data={"grant_type": "client_credentials", **form}, headers=who.basic()
    )
    assert response.status_code == 200, response.json
    return dict(response.json)


def introspect(client: FlaskClient, who: Client, token: str, **form: str) -> dict[str, Any]:
    response = client.post("/oauth2/introspect", data={"token": token, **form}, headers=who.basic())
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    return dict(response.json)
