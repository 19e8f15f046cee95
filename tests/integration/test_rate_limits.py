"""Rate limits per IP and per account, the brute-force throttle, and a Redis outage."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from tests.conftest import PASSWORD

pytestmark = pytest.mark.integration
LOGIN = "/api/v1/auth/login"


@pytest.fixture
def limited(make_other_app):
    """An app with small limits, on the same (per-test flushed) Redis as ``app``."""

    def build(**overrides):
        settings = {
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_LOGIN": "3/minute",
            "RATELIMIT_REGISTER": "2/minute",
            "RATELIMIT_REFRESH": "2/minute",
            "RATELIMIT_DEFAULT": "4/minute",
            "LOGIN_THROTTLE_ENABLED": False,
            **overrides,
        }
        return make_other_app(**settings).test_client()

    return build


WRONG = "wrong password here"


def login(client, email="alice@example.com", password=WRONG, ip=None):
    headers = {"X-Forwarded-For": ip} if ip else {}
    return client.post(LOGIN, json={"email": email, "password": password}, headers=headers)


def assert_rate_limited(response, limit: str) -> None:
    assert response.status_code == 429
    assert response.json["error"]["code"] == "rate_limited"
    assert response.json["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["X-RateLimit-Limit"] == limit
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) > 0
    assert int(response.headers["Retry-After"]) > 0


def test_login_limit_triggers_at_its_configured_number_with_headers(limited):
    client = limited()
    responses = [login(client) for _ in range(3)]
    assert [r.status_code for r in responses] == [401, 401, 401]
    assert responses[0].headers["X-RateLimit-Limit"] == "3"
    assert responses[0].headers["X-RateLimit-Remaining"] == "2"
    assert_rate_limited(login(client), "3")


def test_per_account_limit_holds_across_many_client_ips(limited):
    client = limited(TRUSTED_PROXIES=1)
    statuses = [login(client, ip=f"203.0.113.{n}").status_code for n in range(1, 4)]
    assert statuses == [401, 401, 401]
    assert_rate_limited(login(client, ip="198.51.100.77"), "3")


def test_one_ip_cannot_spray_many_accounts(limited):
    client = limited()
    for n in range(3):
        assert login(client, email=f"user{n}@example.com").status_code == 401
    assert_rate_limited(login(client, email="user99@example.com"), "3")


def test_forwarded_for_is_ignored_without_trusted_proxies(limited):
    client = limited(TRUSTED_PROXIES=0)
    for n in range(3):
        assert login(client, email=f"user{n}@example.com", ip=f"203.0.113.{n}").status_code == 401
    # a spoofed header does not buy a fresh per-IP budget
    assert login(client, email="other@example.com", ip="192.0.2.1").status_code == 429


def test_forwarded_for_is_honoured_behind_a_trusted_proxy(limited):
    client = limited(TRUSTED_PROXIES=1)
    for n in range(3):
        assert login(client, email=f"user{n}@example.com", ip="203.0.113.5").status_code == 401
    assert login(client, email="user9@example.com", ip="203.0.113.5").status_code == 429
    assert login(client, email="user10@example.com", ip="203.0.113.6").status_code == 401


def test_register_refresh_and_default_limits(limited):
    client = limited()
    for n in range(2):
        body = {"email": f"new{n}@example.com", "password": PASSWORD}
        assert client.post("/api/v1/auth/register", json=body).status_code == 201
    assert_rate_limited(
        client.post("/api/v1/auth/register", json={"email": "x@example.com", "password": PASSWORD}),
        "2",
    )
    for _ in range(2):
        assert client.post("/api/v1/auth/refresh", json={"refresh_token": "x"}).status_code == 401
    assert_rate_limited(client.post("/api/v1/auth/refresh", json={"refresh_token": "x"}), "2")
    for _ in range(4):
        assert client.get("/api/v1/auth/me").status_code == 401
    assert_rate_limited(client.get("/api/v1/auth/me"), "4")


def test_probes_and_jwks_are_not_limited(limited):
    client = limited(RATELIMIT_DEFAULT="1/minute")
    for _ in range(5):
        assert client.get("/health/live").status_code == 200
        assert client.get("/.well-known/jwks.json").status_code == 200


def test_the_openapi_document_is_limited_per_ip_and_a_304_counts(limited):
    client = limited(RATELIMIT_APISPEC="3/minute", RATELIMIT_DEFAULT="1/minute")
    first = client.get("/apispec.json")
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "3"
    etag = first.headers["ETag"]
    assert client.get("/apispec.json", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/apispec.json").get_data() == first.get_data()
    assert_rate_limited(client.get("/apispec.json"), "3")
    assert_rate_limited(client.get("/apispec.json", headers={"If-None-Match": etag}), "3")
    # Swagger UI's page stays unlimited (the default of 1/minute would have stopped it)
    for _ in range(3):
        assert client.get("/apidocs/").status_code == 200


CLIENT_REDIRECT = "https://app.example.com/oauth/done"
GITHUB = {
    "GITHUB_CLIENT_ID": "gh-client",
    "GITHUB_CLIENT_SECRET": "gh-secret",
    "OAUTH_REDIRECT_ALLOWLIST": [CLIENT_REDIRECT],
}


def test_one_ip_starts_few_oauth_sign_ins_and_a_refused_one_stores_nothing(
    limited, redis_client, app
):
    assert app.config["RATELIMIT_OAUTH_AUTHORIZE"] == "20/minute"
    client = limited(
        RATELIMIT_OAUTH_AUTHORIZE="3/minute",
        RATELIMIT_DEFAULT="100/minute",
        TRUSTED_PROXIES=1,
        **GITHUB,
    )
    url = f"/api/v1/oauth/github/authorize?redirect_uri={CLIENT_REDIRECT}"
    one_ip = {"X-Forwarded-For": "203.0.113.5"}
    for _ in range(3):
        assert client.get(url, headers=one_ip).status_code == 302
    assert_rate_limited(client.get(url, headers=one_ip), "3")
    assert len(redis_client.keys("auth:oauth:state:*")) == 3
    assert client.get(url, headers={"X-Forwarded-For": "203.0.113.6"}).status_code == 302


def test_starting_provider_links_is_limited_per_ip_as_well(limited, auth):
    client = limited(RATELIMIT_OAUTH_AUTHORIZE="2/minute", **GITHUB)
    auth.client = client
    auth.register()
    auth.mark_verified()
    token = auth.login()["access_token"]
    body = {"redirect_uri": CLIENT_REDIRECT}
    for _ in range(2):
        response = client.post("/api/v1/oauth/github/link", json=body, headers=auth.bearer(token))
        assert response.status_code == 200, response.json
    assert_rate_limited(
        client.post("/api/v1/oauth/github/link", json=body, headers=auth.bearer(token)), "2"
    )


def test_with_redis_down_limits_still_apply_in_memory_and_nothing_is_500(limited, auth):
    client = limited(
        REDIS_URL="redis://127.0.0.1:1/0",
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
        LOGIN_THROTTLE_ENABLED=True,
        LOGIN_THROTTLE_THRESHOLD=2,
        RATELIMIT_LOGIN="10/minute",
    )
    auth.client = client
    auth.register()
    assert login(client).status_code == 401
    assert login(client).status_code == 401
    throttled = login(client)
    assert throttled.status_code == 429  # the throttle, from process memory
    statuses = [login(client).status_code for _ in range(10)]
    assert 500 not in statuses
    assert statuses[-1] == 429
    assert client.get("/health").json["status"] == "degraded"


class TestBruteForceThrottle:
    @pytest.fixture
    def client(self, limited, auth):
        client = limited(
            RATELIMIT_ENABLED=False,
            LOGIN_THROTTLE_ENABLED=True,
            LOGIN_THROTTLE_THRESHOLD=3,
            LOGIN_THROTTLE_BASE_SECONDS=2,
            LOGIN_THROTTLE_MAX_SECONDS=8,
        )
        auth.client = client
        auth.register()
        auth.mark_verified()  # the tests travel to 2030: an unverified account would expire
        return client

    def test_wait_grows_exponentially_and_is_capped(self, client):
        with time_machine.travel(0, tick=False) as clock:
            clock.move_to("2030-01-01T00:00:00Z")
            waits = []
            for _ in range(3):
                assert login(client).status_code == 401
            for _ in range(4):
                response = login(client)
                assert response.status_code == 429
                waits.append(int(response.headers["Retry-After"]))
                clock.shift(timedelta(seconds=waits[-1]))
                assert login(client).status_code == 401  # the next guess is checked again...
            assert waits == [2, 4, 8, 8]  # ...and each failure doubles the wait, up to the cap

    def test_throttled_answer_does_not_reveal_a_correct_password(self, client):
        with time_machine.travel("2030-01-01T00:00:00Z", tick=False):
            for _ in range(3):
                login(client)
            right = login(client, password=PASSWORD)
            wrong = login(client)
        assert right.status_code == wrong.status_code == 429
        assert right.json["error"] == wrong.json["error"]

    def test_success_resets_the_count(self, client):
        with time_machine.travel("2030-01-01T00:00:00Z", tick=False) as clock:
            for _ in range(3):
                login(client)
            clock.shift(timedelta(seconds=3))
            assert login(client, password=PASSWORD).status_code == 200
            for _ in range(2):
                assert login(client).status_code == 401
            assert login(client).status_code == 401  # the third failure since success: no wait yet
            assert login(client).status_code == 429

    def test_throttle_applies_to_unknown_emails_alike(self, client):
        with time_machine.travel("2030-01-01T00:00:00Z", tick=False):
            for _ in range(3):
                assert login(client, email="ghost@example.com").status_code == 401
            assert login(client, email="ghost@example.com").status_code == 429
