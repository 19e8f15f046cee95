"""Finding 3: parallel guesses must not outrun the per-account throttle.

The attack: send N wrong passwords (or 2FA codes) for one account at once, from many IPs. A
throttle that checks the wait, verifies, and only then counts the failure lets every request in
flight pass the check. The count here is of guesses that were really *verified* (a
``login_failed`` or ``mfa_code_rejected`` event is recorded only after a verification), so the
test fails if more than ``LOGIN_THROTTLE_THRESHOLD`` (+1) of them were checked.
"""

from __future__ import annotations

from collections import Counter

import pytest

from auth_microservice_app.extensions import db
from tests.concurrency import race
from tests.conftest import PASSWORD, AuthActions
from tests.integration.two_factor.conftest import WRONG_CODE, TwoFactor
from tests.observe import verifications

pytestmark = pytest.mark.integration
LOGIN = "/api/v1/auth/login"
THRESHOLD = 5
PARALLEL = 20
#: OWASP's argon2id: a verification takes tens of milliseconds, so requests overlap for real.
SLOW_HASH = {"ARGON2_TIME_COST": 2, "ARGON2_MEMORY_COST": 19456, "ARGON2_PARALLELISM": 1}


def throttled_app(make_other_app, **overrides):
    return make_other_app(
        RATELIMIT_ENABLED=False,
        LOGIN_THROTTLE_ENABLED=True,
        LOGIN_THROTTLE_THRESHOLD=THRESHOLD,
        LOGIN_THROTTLE_BASE_SECONDS=60,
        TRUSTED_PROXIES=1,
        # every guess gets in line for the hash thread (none refused for capacity, 503): the
        # throttle alone decides here
        ARGON2_MAX_WAITING=PARALLEL,
        ARGON2_QUEUE_TIMEOUT=60,
        **SLOW_HASH,
        **overrides,
    )


def wrong_login(index: int, email: str = "victim@example.com"):
    headers = {"X-Forwarded-For": f"203.0.113.{index + 1}"}  # every guess from its own IP
    body = {"email": email, "password": f"wrong guess number {index}"}
    return lambda client: client.post(LOGIN, json=body, headers=headers)


def statuses(responses) -> Counter:
    return Counter(response.status_code for response in responses)


def codes(responses) -> Counter:
    return Counter(response.json["error"]["code"] for response in responses)


@pytest.mark.slow
@pytest.mark.parametrize(
    "redis_url",
    [None, "redis://127.0.0.1:1/0"],
    ids=["redis", "redis-down-one-process-still-reserves-each-attempt"],
)
def test_parallel_wrong_passwords_verify_at_most_the_threshold(make_other_app, redis_url):
    app = throttled_app(make_other_app, **({"REDIS_URL": redis_url} if redis_url else {}))
    client = app.test_client()
    body = {"email": "victim@example.com", "password": PASSWORD}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201

    before = verifications(app)
    results = race(app, [wrong_login(i) for i in range(PARALLEL)])

    assert statuses(results) == Counter({401: THRESHOLD, 429: PARALLEL - THRESHOLD})
    assert verifications(app) - before <= THRESHOLD + 1  # argon2 checks really run
    # the right password now waits too: the wait is the account's, not the guesser's
    assert client.post(LOGIN, json=body).status_code == 429


@pytest.mark.slow
def test_parallel_guesses_at_an_unknown_address_are_throttled_alike(make_other_app):
    app = throttled_app(make_other_app)
    results = race(app, [wrong_login(i, "nobody@example.com") for i in range(PARALLEL)])
    assert statuses(results) == Counter({401: THRESHOLD, 429: PARALLEL - THRESHOLD})
    assert verifications(app) <= THRESHOLD + 1  # the dummy checks of an unknown address


@pytest.mark.config(LOGIN_THROTTLE_ENABLED=True, LOGIN_THROTTLE_THRESHOLD=2)
def test_a_correct_password_of_a_2fa_user_gives_its_reservation_back(configured_app):
    """The reservation of a right password is released, not kept as a failure: a 2FA user who
    signs in (first step) more often than the threshold is never made to wait."""
    app = configured_app
    client = app.test_client()
    flow = TwoFactor(client, AuthActions(client), clock=None)
    flow.enroll("victim@example.com")
    for _ in range(4):
        flow.challenge("victim@example.com")  # each answers 200 with an mfa_token


@pytest.mark.slow
@pytest.mark.config(
    RATELIMIT_ENABLED=False,
    LOGIN_THROTTLE_ENABLED=True,
    LOGIN_THROTTLE_THRESHOLD=THRESHOLD,
    LOGIN_THROTTLE_BASE_SECONDS=60,
)
def test_parallel_wrong_codes_verify_at_most_the_threshold(configured_app):
    app = configured_app
    client = app.test_client()
    flow = TwoFactor(client, AuthActions(client), clock=None)
    flow.enroll("victim@example.com")
    token = flow.challenge("victim@example.com")
    body = {"mfa_token": token, "code": WRONG_CODE}

    results = race(
        app, [lambda c: c.post("/api/v1/2fa/verify", json=body) for _ in range(PARALLEL)]
    )

    # each invalid_mfa_code is one code that was checked: no more than the threshold
    assert codes(results) == Counter(
        {"invalid_mfa_code": THRESHOLD, "rate_limited": PARALLEL - THRESHOLD}
    )


@pytest.mark.config(DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, DB_POOL_TIMEOUT=1)
def test_a_request_that_gets_no_database_connection_in_time_answers_503(configured_app):
    app = configured_app
    client = app.test_client()
    with app.app_context(), db.engine.connect():  # the pool's only connection, held
        response = client.post(
            LOGIN, json={"email": "victim@example.com", "password": "wrong guess"}
        )
    assert response.status_code == 503
    assert response.json["error"]["code"] == "service_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert "SELECT" not in response.get_data(as_text=True)
    # the connection is back: the service answers normally again
    assert (
        client.post(LOGIN, json={"email": "victim@example.com", "password": "x"}).status_code == 401
    )


@pytest.mark.config(RATELIMIT_ENABLED=True, DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, DB_POOL_TIMEOUT=1)
def test_a_503_keeps_its_own_retry_after_on_a_rate_limited_endpoint(configured_app):
    """Flask-Limiter stretches any Retry-After to its window's reset: a database blip must not
    tell clients to come back in an hour (/register's window)."""
    app = configured_app
    client = app.test_client()
    with app.app_context(), db.engine.connect():  # the pool's only connection, held
        response = client.post(
            "/api/v1/auth/register",
            json={"email": "new@example.com", "password": "correct horse battery staple"},
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert int(response.headers["X-RateLimit-Remaining"]) >= 0  # the limiter's headers stay
