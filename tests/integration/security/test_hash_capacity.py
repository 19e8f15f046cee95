"""Issue 15, F4: the password hash as a lever on everyone else's requests.

A request that cannot start its argon2 hash within ``ARGON2_QUEUE_TIMEOUT`` answers 503
``service_unavailable`` with ``Retry-After`` instead of holding a request thread for as long as
the queue lasts, on every path that hashes; the hashes themselves run only on the process's
``ARGON2_MAX_CONCURRENT`` hash threads. Real PostgreSQL and Redis; the hash threads are held by
:func:`tests.hashing.hash_threads_held`, deterministically.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from auth_microservice_app.identity import throttle
from tests.conftest import PASSWORD
from tests.hashing import hash_threads_held, pool_of

pytestmark = pytest.mark.integration
API = "/api/v1/auth"
QUEUE_TIMEOUT = 0.3
#: Far above QUEUE_TIMEOUT, far below "held until the holder lets go" (60 s): no flakiness.
ANSWER_DEADLINE = 5.0
NEW_PASSWORD = "a different passphrase entirely"


@pytest.fixture
def busy_app(app, monkeypatch):
    """The suite's app with one hash thread and a short wait for it."""
    monkeypatch.setitem(app.config, "ARGON2_MAX_CONCURRENT", 1)
    monkeypatch.setitem(app.config, "ARGON2_QUEUE_TIMEOUT", QUEUE_TIMEOUT)
    return app


def assert_busy(response, elapsed: float) -> None:
    assert response.status_code == 503, response.json
    assert response.json["error"]["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert QUEUE_TIMEOUT <= elapsed < ANSWER_DEADLINE


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_login_without_a_free_hash_thread_answers_503_with_retry_after_then_works(
    busy_app, auth, client
):
    auth.register("ada@example.com")
    with hash_threads_held(busy_app):
        response, elapsed = timed(
            lambda: client.post(
                f"{API}/login", json={"email": "ada@example.com", "password": PASSWORD}
            )
        )
    assert_busy(response, elapsed)
    assert auth.login("ada@example.com")["access_token"]


def _login_known(client, auth):
    auth.register("ada@example.com")
    return lambda: client.post(f"{API}/login", json={"email": "ada@example.com", "password": "x"})


def _login_unknown(client, auth):
    auth.register("ada@example.com")
    auth.login("ada@example.com")  # the dummy hash exists: only the dummy verification waits
    body = {"email": "nobody@example.com", "password": PASSWORD}
    return lambda: client.post(f"{API}/login", json=body)


def _register(client, auth):
    body = {"email": "new@example.com", "password": PASSWORD}
    return lambda: client.post(f"{API}/register", json=body)


def _change(client, auth):
    token = auth.signup_and_login("ada@example.com")["access_token"]
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    return lambda: client.post(f"{API}/password/change", json=body, headers=auth.bearer(token))


def _reset(client, auth, mailbox):
    auth.register("ada@example.com")
    assert client.post(f"{API}/password/forgot", json={"email": "ada@example.com"}).status_code
    token = mailbox.link_for("ada@example.com", "reset-password")
    body = {"token": token, "password": NEW_PASSWORD}
    return lambda: client.post(f"{API}/password/reset", json=body)


@pytest.mark.parametrize(
    "prepare",
    [_login_known, _login_unknown, _register, _change],
    ids=["login-verify", "login-unknown-dummy", "register-hash", "password-change"],
)
def test_every_hashing_path_answers_503_when_no_hash_thread_frees_in_time(
    busy_app, client, auth, prepare
):
    request = prepare(client, auth)
    with hash_threads_held(busy_app):
        response, elapsed = timed(request)
    assert_busy(response, elapsed)
    assert request().status_code != 503  # free again: the request is served


def test_password_reset_without_a_free_hash_thread_answers_503_and_keeps_the_link(
    busy_app, client, auth, mailbox
):
    request = _reset(client, auth, mailbox)
    with hash_threads_held(busy_app):
        response, elapsed = timed(request)
    assert_busy(response, elapsed)
    assert request().status_code == 200  # the link was not spent by the refused attempt
    assert auth.login("ada@example.com", NEW_PASSWORD)


def test_refused_logins_do_not_count_toward_the_account_throttle(
    busy_app, client, auth, monkeypatch
):
    monkeypatch.setitem(busy_app.config, "LOGIN_THROTTLE_THRESHOLD", 2)
    auth.register("ada@example.com")
    body = {"email": "ada@example.com", "password": PASSWORD}
    with hash_threads_held(busy_app):
        refused = [client.post(f"{API}/login", json=body).status_code for _ in range(4)]
    assert refused == [503] * 4
    assert client.post(f"{API}/login", json=body).status_code == 200  # not 429


def test_a_login_already_waiting_is_served_when_a_thread_frees_within_the_wait(
    busy_app, client, auth
):
    busy_app.config["ARGON2_QUEUE_TIMEOUT"] = ANSWER_DEADLINE  # restored by busy_app
    auth.register("ada@example.com")
    body = {"email": "ada@example.com", "password": PASSWORD}
    result: list[int] = []
    waiter = threading.Thread(
        target=lambda: result.append(
            busy_app.test_client().post(f"{API}/login", json=body).status_code
        )
    )
    with hash_threads_held(busy_app) as pool:
        waiter.start()
        deadline = time.monotonic() + ANSWER_DEADLINE
        while pool.queued() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.queued() == 1  # the login waits for the held thread
    waiter.join(timeout=ANSWER_DEADLINE + 5)
    assert result == [200]


def test_hashes_run_only_on_the_hash_threads_however_many_requests_hash(busy_app, monkeypatch):
    """The structural half of F4's memory finding: each thread that hashes keeps a 19 MiB
    malloc arena, so the number of threads that ever hash must stay ARGON2_MAX_CONCURRENT."""

    busy_app.config["ARGON2_QUEUE_TIMEOUT"] = 30.0  # restored by busy_app
    monkeypatch.setitem(busy_app.config, "ARGON2_MAX_WAITING", 12)  # all twelve wait their turn
    pool = pool_of(busy_app)
    before = pool.computed
    request_threads: set[int] = set()

    def register(index: int) -> int:
        request_threads.add(threading.get_ident())
        body = {"email": f"user{index}@example.com", "password": PASSWORD}
        return busy_app.test_client().post(f"{API}/register", json=body).status_code

    results: list[int] = []
    threads = [threading.Thread(target=lambda i=i: results.append(register(i))) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [201] * 12
    assert pool.computed - before >= 12
    assert len(pool.thread_ids) == 1
    assert not pool.thread_ids & request_threads


def test_a_login_past_the_waiting_places_is_refused_at_once(
    busy_app, client, auth, monkeypatch, redis_client
):
    """Waiting is bounded in number too: a flood cannot hold every request thread."""
    monkeypatch.setitem(busy_app.config, "ARGON2_QUEUE_TIMEOUT", ANSWER_DEADLINE)
    monkeypatch.setitem(busy_app.config, "ARGON2_MAX_WAITING", 1)
    auth.register("ada@example.com")
    body = {"email": "ada@example.com", "password": PASSWORD}
    results: list[int] = []
    with hash_threads_held(busy_app) as pool:
        # the held thread took no place: two places (1 hashing + 1 waiting), both now taken
        waiters = [
            threading.Thread(
                target=lambda: results.append(
                    busy_app.test_client().post(f"{API}/login", json=body).status_code
                )
            )
            for _ in range(2)
        ]
        for waiter in waiters:
            waiter.start()
        deadline = time.monotonic() + ANSWER_DEADLINE
        while pool.queued() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.queued() == 2
        other = {"email": "bob@example.com", "password": PASSWORD}
        response, elapsed = timed(lambda: client.post(f"{API}/login", json=other))
    for waiter in waiters:
        waiter.join(timeout=ANSWER_DEADLINE + 5)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert elapsed < ANSWER_DEADLINE / 2  # refused at once, not after the wait
    # before the throttle or the budget was even asked: nothing about bob was counted
    assert not redis_client.exists(throttle.account_key("bob@example.com"))
    assert sorted(results) == [200, 200]  # the two in line were served once the thread freed


def test_hash_threads_run_at_a_lower_cpu_priority(busy_app, auth):
    auth.register("ada@example.com")  # one hash on the pool
    pool = pool_of(busy_app)
    assert pool.native_ids
    for tid in pool.native_ids:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        nice = int(stat[stat.rfind(")") + 2 :].split()[16])
        assert nice == busy_app.config["ARGON2_NICE"] == 19


def test_a_right_password_signs_in_when_only_its_rehash_finds_no_hash_thread(
    busy_app, auth, client, monkeypatch
):
    """The upgrade of an old hash is optional: a 503 there must not fail a correct sign-in."""
    from auth_microservice_app.auth import flows as services
    from auth_microservice_app.errors import HashingBusy

    auth.register("ada@example.com")
    monkeypatch.setitem(busy_app.config, "ARGON2_TIME_COST", 2)  # the stored hash is now old

    def no_thread(_password: str) -> str:
        raise HashingBusy()

    monkeypatch.setattr(services, "hash_password", no_thread)
    response = client.post(f"{API}/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.json
