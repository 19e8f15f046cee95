"""Schemathesis against the app, in process: no 5xx, and every answer is what the document says.

Every documented operation is called with the document's examples, schemathesis's coverage
cases (boundaries, missing and wrong-typed fields) and a bounded number of generated ones;
each response is checked for server errors, status code, content type, headers and body
schema, and operations that declare a token are also called without one. Operations that need
a token get a real one: a user registered per test and signed in again before each call (a
call may sign it out, e.g. ``/logout-all``).
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    positive_data_acceptance,
    unsupported_method,
)

from auth_microservice_app.mail.outbox import LOCAL_DELIVERY
from tests.conftest import AuthActions, make_app

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 10  # per operation, with the examples and coverage phases: ~30 s in all
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261201,  # reproducible in CI; change it locally to explore further
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
    }
)
#: Built-in checks left out of the main test, with the reason.
EXCLUDED_CHECKS = [
    # "Schema-valid input must be accepted" cannot hold for this API: a schema cannot know
    # which one-time tokens exist (400 invalid_token) or the password policy (422 weak_password).
    positive_data_acceptance,
    # Both checked per path by test_undeclared_methods_answer_405_with_an_honest_allow_header
    # below, path by path.
    allow_header_conformance,
    unsupported_method,
]
PASSWORD = "fuzzing-user password 7f3a"  # not the documentation's example password
#: Operations that fail because of an app bug, not the document (strict: fixed means XPASS).
KNOWN_APP_BUGS: dict[str, str] = {}


def _spec_app() -> Flask:
    # Only for reading the document at collection time (no database needed); requests go to
    # the `fuzz_app` fixture, which shares the test database and the session's signing key.
    from auth_microservice_app.utils.keys import generate_private_key, private_key_pem

    return make_app(private_key_pem(generate_private_key("RS256")).decode())


schema = schemathesis.openapi.from_wsgi("/apispec.json", _spec_app(), config=CONFIG)


@pytest.fixture(scope="module")
def fuzz_app(app: Flask, signing_key_pem: str) -> Flask:
    return make_app(
        signing_key_pem,
        RATELIMIT_ENABLED=False,
        # Failed password checks lock the account for a while; the fuzzer fails many.
        LOGIN_THROTTLE_ENABLED=False,
    )


@pytest.fixture
def user(auth: AuthActions) -> AuthActions:
    auth.register(password=PASSWORD)
    return auth


@pytest.fixture(autouse=True)
def _known_app_bugs(request: pytest.FixtureRequest) -> None:
    label = re.search(r"\[(.*)\]$", request.node.name)
    if label and label.group(1) in KNOWN_APP_BUGS:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_APP_BUGS[label.group(1)]))


def credentials(case: schemathesis.Case, user: AuthActions) -> dict[str, str]:
    """A fresh token for an operation that declares one (the previous call may have revoked it)."""
    security = case.operation.definition.raw.get("security", [])
    schemes = {name for requirement in security for name in requirement}
    if not schemes:
        return {}
    tokens = user.login(password=PASSWORD)
    kind = "access_token" if "bearerAuth" in schemes else "refresh_token"
    return user.bearer(tokens[kind])


@schema.parametrize()
# The fixtures hold the app and the registered user; each example signs in again by itself.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_app_answers_as_documented(
    case: schemathesis.Case, fuzz_app: Flask, user: AuthActions
) -> None:
    case.call_and_validate(
        app=fuzz_app, headers=credentials(case, user), excluded_checks=EXCLUDED_CHECKS
    )
    LOCAL_DELIVERY.join()  # this example's mail is out before the next one is generated


SOME_ID = "00000000-0000-4000-8000-000000000000"
SAMPLE_PATH_VALUES = {
    "provider": "google",
    "session_id": SOME_ID,
    "user_id": SOME_ID,
    "client_id": "svc_none",
}
UNDECLARED_METHOD_CASES = [pytest.param(path, id=path) for path in schema.raw_schema["paths"]]


@pytest.fixture(scope="module")
def routing_app(signing_key_pem: str) -> Flask:
    # Not `fuzz_app`: a 405 is decided by the routes alone, so these tests need no clean database.
    return make_app(signing_key_pem, RATELIMIT_ENABLED=False)


@pytest.mark.parametrize("path", UNDECLARED_METHOD_CASES)
def test_undeclared_methods_answer_405_with_an_honest_allow_header(
    routing_app: Flask, path: str
) -> None:
    # What schemathesis's unsupported_method and allow_header_conformance checks verify,
    # per path.
    documented = {m.upper() for m in schema.raw_schema["paths"][path] if m != "parameters"}
    expected_allow = documented | {"OPTIONS"} | ({"HEAD"} if "GET" in documented else set())
    url = path.format(**SAMPLE_PATH_VALUES)
    client = routing_app.test_client()
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - documented):
        response = client.open(url, method=method)
        assert response.status_code == 405, (method, response.status_code, response.json)
        error = response.json["error"]  # /oauth2 speaks OAuth 2.0: {"error": code, ...}
        assert (error if path.startswith("/oauth2/") else error["code"]) == "method_not_allowed"
        assert {m.strip() for m in response.headers["Allow"].split(",")} == expected_allow
