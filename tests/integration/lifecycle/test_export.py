"""GET /api/v1/auth/me/export: every table about the user is in it, nothing secret is."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from auth_microservice_app.extensions import db
from auth_microservice_app.identity.export import SECTIONS
from auth_microservice_app.models import (
    EmailToken,
    OAuthAccount,
    TwoFactorCredential,
    User,
    UserSession,
)
from tests.conftest import PASSWORD
from tests.integration.two_factor.conftest import TwoFactor, clock  # noqa: F401

from .helpers import user_tables

pytestmark = pytest.mark.integration
EXPORT = "/api/v1/auth/me/export"


@pytest.fixture
def tfa(client, auth, clock):  # noqa: F811 - the two_factor tests' frozen clock
    return TwoFactor(client, auth, clock)


def _at(body, path):
    for key in path:
        body = body[key]
    return body


def test_the_export_holds_every_row_of_every_table_about_the_user(app, client, auth, tfa):
    enrolled = tfa.enroll()
    headers = auth.bearer(enrolled.access_token)
    mfa_token = tfa.challenge()
    tfa.verify(mfa_token, tfa.next_code(enrolled.secret))
    client.post(
        "/api/v1/auth/me/email",
        json={"new_email": "alice.new@example.com", "password": PASSWORD},
        headers=headers,
    )
    client.post("/api/v1/auth/revoke", json={"token": enrolled.access_token}, headers=headers)
    fresh = tfa.verify(tfa.challenge(), tfa.next_code(enrolled.secret)).json
    with app.app_context():  # a linked provider (the OAuth tests link them for real)
        owner = db.session.execute(select(User)).scalar_one()
        db.session.add(
            OAuthAccount(user_id=owner.id, provider="github", subject="42", email=owner.email)
        )
        db.session.commit()

    response = client.get(EXPORT, headers=auth.bearer(fresh["access_token"]))

    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Cache-Control"] == "no-store"
    body = json.loads(response.data)
    tables = user_tables()
    # a table about users that the export forgets fails here: add it to export.SECTIONS
    assert set(tables) <= set(SECTIONS), set(tables) - set(SECTIONS)
    with app.app_context():
        user_id = db.session.execute(select(User.id)).scalar_one()
        for table, columns in tables.items():
            where = " OR ".join(f"{column} = :uid" for column in columns)
            count: int = db.session.execute(
                text(f"SELECT count(*) FROM {table} WHERE {where}"),  # noqa: S608 - our names
                {"uid": user_id},
            ).scalar_one()
            section = _at(body, SECTIONS[table])
            exported = 1 if isinstance(section, dict) else len(section)
            assert exported == count, (table, count, section)
            assert count > 0, table  # the setup above gives every table a row
        # nothing secret: no hash, no token id, no TOTP secret
        secrets = [
            db.session.execute(select(User.password_hash)).scalar_one(),
            db.session.execute(select(TwoFactorCredential.secret_ciphertext)).scalar_one(),
            enrolled.secret,
            *db.session.execute(select(EmailToken.token_hash)).scalars(),
            *db.session.execute(select(UserSession.refresh_jti)).scalars(),
            *db.session.execute(select(UserSession.access_jti)).scalars(),
        ]
    text_body = response.data.decode()
    assert all(secret not in text_body for secret in secrets)
    assert "code_hash" not in text_body and "lookup_hint" not in text_body
    assert body["passkeys"] == []
    assert body["two_factor"]["enabled"] is True
    assert body["email_links"][-1]["new_email"] == "alice.new@example.com"


def test_the_export_needs_an_access_token(client):
    assert client.get(EXPORT).status_code == 401
