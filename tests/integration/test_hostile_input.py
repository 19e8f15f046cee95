"""Random JSON at every endpoint with a body: never a 500, always the envelope, no row written."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from auth_microservice_app.extensions import db
from auth_microservice_app.mail.outbox import LOCAL_DELIVERY
from auth_microservice_app.models import EmailToken, RevokedToken, User, UserSession

pytestmark = pytest.mark.integration

FIELD_NAMES = [
    "email",
    "password",
    "name",
    "token",
    "refresh_token",
    "code",
    "mfa_token",
    "current_password",
    "new_password",
    "id_token",
    "code_verifier",
    "redirect_uri",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.text(alphabet=st.characters(codec="utf-8", categories=["Cs", "Cc", "Co"]), max_size=10)
    | st.sampled_from(["\x00", "a\x00b", "\ud800", "x" * 5000, "a@b.co", "é" * 300])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
bodies = st.dictionaries(
    st.sampled_from(FIELD_NAMES) | st.text(max_size=12), json_values, max_size=5
)


def body_endpoints(app) -> list[tuple[str, str]]:
    endpoints = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted((rule.methods or set()) & {"POST", "PATCH", "PUT"}):
            path = rule.rule.replace("<provider>", "google")
            if "<" not in path:
                endpoints.append((method, path))
    return endpoints


def row_counts(app) -> tuple[int | None, ...]:
    with app.app_context():
        counts = tuple(
            db.session.scalar(select(func.count()).select_from(m))
            for m in (User, UserSession, RevokedToken, EmailToken)
        )
        db.session.remove()
    return counts


@pytest.fixture
def fresh_bearer(auth):
    auth.register()
    # each example gets its own session: a random body that happens to be a valid logout must
    # not leave the next example testing only the revoked-token path
    return lambda: auth.bearer(auth.login()["access_token"])


def test_there_are_body_endpoints_to_fuzz(app):
    assert len(body_endpoints(app)) >= 6


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_json_never_breaks_an_endpoint(app, client, fresh_bearer, data):
    method, path = data.draw(st.sampled_from(body_endpoints(app)))
    body = data.draw(bodies | st.lists(json_values, max_size=3) | json_values)
    raw = data.draw(st.sampled_from(["json", "deep", "bytes"]))
    if raw == "json":
        payload = json.dumps(body).encode()
    elif raw == "deep":
        payload = ('{"email": ' + "[" * 3000 + "]" * 3000 + "}").encode()
    else:
        payload = data.draw(st.binary(max_size=64))
    headers = {**fresh_bearer(), "Content-Type": "application/json"}
    LOCAL_DELIVERY.join()  # earlier examples' mail is delivered (and its link rows written)
    before = row_counts(app)
    response = client.open(
        path,
        method=method,
        data=payload,
        headers=headers,
    )
    assert response.status_code < 500, (method, path, response.get_data(as_text=True))
    if response.status_code >= 400:
        envelope = response.get_json()
        assert set(envelope) == {"error", "request_id"}
        assert isinstance(envelope["error"]["code"], str)
        assert row_counts(app) == before
