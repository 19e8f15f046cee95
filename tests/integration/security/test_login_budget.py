"""Issue 15, F4: a service-wide budget of dummy verifications for unknown addresses.

Wrong-password logins for addresses without an account cost a dummy argon2 verification each
(the timing must not reveal existence). An attacker rotating IPs and addresses would make the
service burn hashes at will; past ``LOGIN_UNKNOWN_BUDGET`` per minute (counted in Redis, shared
by every process) they still answer 401 but compute nothing. Hashes are counted on the
process's hash threads (:class:`HashPool.computed`), the real ones, not a stand-in.
"""

from __future__ import annotations

import statistics
import time

import pytest

from auth_microservice_app.identity.login_budget import PREFIX
from tests.conftest import PASSWORD, AuthActions
from tests.hashing import pool_of

pytestmark = pytest.mark.integration
LOGIN = "/api/v1/auth/login"
BUDGET = 3


def budget_app(make_other_app, **overrides):
    settings = {
        "LOGIN_UNKNOWN_BUDGET": BUDGET,
        "LOGIN_UNKNOWN_BUDGET_LOCAL": BUDGET,
        "ARGON2_MAX_CONCURRENT": 1,
        "LOGIN_THROTTLE_ENABLED": False,
    }
    return make_other_app(**{**settings, **overrides})


def unknown_login(client, index: int):
    return client.post(LOGIN, json={"email": f"nobody{index}@example.com", "password": "guess"})


def hashes(app) -> int:
    return pool_of(app).computed


def test_unknown_address_logins_past_the_budget_answer_401_without_a_hash(
    make_other_app, redis_client
):
    app = budget_app(make_other_app)
    client = app.test_client()
    AuthActions(client).register("ada@example.com")
    unknown_login(client, -1)  # makes this process's dummy hash (one hash, then one verify)
    redis_client.delete(*redis_client.keys(f"{PREFIX}*"))

    within = []
    for index in range(BUDGET):
        before = hashes(app)
        response = unknown_login(client, index)
        within.append((response.status_code, hashes(app) - before))
    past = []
    for index in range(BUDGET, BUDGET + 3):
        before = hashes(app)
        response = unknown_login(client, index)
        past.append((response.status_code, response.json["error"]["code"], hashes(app) - before))

    assert within == [(401, 1)] * BUDGET
    assert past == [(401, "invalid_credentials", 0)] * 3
    [key] = redis_client.keys(f"{PREFIX}*")
    assert int(redis_client.get(key)) == BUDGET + 3
    assert 0 < redis_client.ttl(key) <= 120
    # known addresses are not rationed: a wrong password is verified, the right one signs in
    before = hashes(app)
    wrong = client.post(LOGIN, json={"email": "ada@example.com", "password": "wrong guess"})
    assert (wrong.status_code, hashes(app) - before) == (401, 1)
    assert (
        client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD}).status_code
        == 200
    )
    assert int(redis_client.get(key)) == BUDGET + 3  # known addresses count nothing


def test_the_budget_is_shared_by_every_process(make_other_app, redis_client):
    first, second = budget_app(make_other_app), budget_app(make_other_app)
    unknown_login(first.test_client(), -1)  # the dummy hash exists
    redis_client.delete(*redis_client.keys(f"{PREFIX}*"))
    for index in range(BUDGET):
        assert unknown_login((first, second)[index % 2].test_client(), index).status_code == 401
    before = hashes(second)
    assert unknown_login(second.test_client(), BUDGET).status_code == 401
    assert hashes(second) == before  # spent by both together


def test_with_redis_down_each_process_keeps_a_budget_of_its_own(make_other_app):
    app = budget_app(make_other_app, REDIS_URL="redis://127.0.0.1:1/0")
    client = app.test_client()
    unknown_login(client, -1)  # counted too: the dummy hash, then BUDGET - 1 more
    counted = []
    for index in range(BUDGET + 1):
        before = hashes(app)
        assert unknown_login(client, index).status_code == 401
        counted.append(hashes(app) - before)
    assert counted == [1] * (BUDGET - 1) + [0, 0]


def test_past_the_budget_an_unknown_address_answers_as_slowly_as_a_verification(make_other_app):
    """Not at once: exhausting the budget must not make non-existence readable off the clock."""
    app = budget_app(
        make_other_app,
        LOGIN_UNKNOWN_BUDGET=1,
        ARGON2_TIME_COST=2,
        ARGON2_MEMORY_COST=19456,  # production parameters: ~50 ms a verification
        ARGON2_PARALLELISM=1,
    )
    client = app.test_client()
    AuthActions(client).register("ada@example.com")

    def timed(body) -> float:
        started = time.perf_counter()
        assert client.post(LOGIN, json=body).status_code == 401
        return time.perf_counter() - started

    known = [timed({"email": "ada@example.com", "password": f"wrong {i}"}) for i in range(8)]
    unknown_login(client, -1)  # the budget's one dummy verification
    before = hashes(app)
    unknown = [timed({"email": f"nobody{i}@example.com", "password": "guess"}) for i in range(8)]
    assert hashes(app) == before  # none computed
    # each replays the wait of a recent real verification: same order of time, not ~0
    assert statistics.median(unknown) > 0.5 * statistics.median(known)
