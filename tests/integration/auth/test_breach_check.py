"""The optional k-anonymity breach check, against a local fake of the range API."""

from __future__ import annotations

import hashlib
import re

import pytest
from werkzeug import Request, Response

from tests.conftest import PASSWORD

pytestmark = pytest.mark.integration
BREACHED = "tr0ub4dor&3-but-longer"


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest().upper()


@pytest.fixture
def range_api(httpserver, app):
    seen: list[str] = []

    def handler(request: Request) -> Response:
        prefix = request.path.rsplit("/", 1)[-1]
        seen.append(prefix)
        lines = ["0018A45C4D1DEF81644B54AB7F969B88D65:1"]
        if sha1(BREACHED).startswith(prefix):
            lines.append(f"{sha1(BREACHED)[5:]}:3861493")
        return Response("\r\n".join(lines), content_type="text/plain")

    httpserver.expect_request(re.compile(r"^/range/[0-9A-F]{5}$")).respond_with_handler(handler)
    app.config["PASSWORD_BREACH_CHECK_URL"] = httpserver.url_for("/range")
    yield seen
    app.config["PASSWORD_BREACH_CHECK_URL"] = None


def test_breached_password_is_refused_and_only_a_prefix_leaves(client, range_api):
    response = client.post(
        "/api/v1/auth/register", json={"email": "ada@example.com", "password": BREACHED}
    )
    assert response.status_code == 422
    assert response.json["error"]["details"]["reason"] == "breached"
    assert range_api == [sha1(BREACHED)[:5]]


def test_unlisted_password_is_accepted(client, range_api):
    response = client.post(
        "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    assert range_api == [sha1(PASSWORD)[:5]]


def test_an_outage_of_the_range_api_never_blocks_sign_up(app, client, httpserver):
    httpserver.expect_request(re.compile(r"^/range/.*")).respond_with_data("oops", status=503)
    app.config["PASSWORD_BREACH_CHECK_URL"] = httpserver.url_for("/range")
    try:
        response = client.post(
            "/api/v1/auth/register", json={"email": "ada@example.com", "password": BREACHED}
        )
    finally:
        app.config["PASSWORD_BREACH_CHECK_URL"] = None
    assert response.status_code == 201
