"""argon2id hashing: a worker process computes at most ARGON2_MAX_CONCURRENT hashes at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask

from auth_microservice_app.identity import hashing as security


class CountingHasher:
    """Stands in for argon2's PasswordHasher and records how many calls overlap."""

    def __init__(self, meet: threading.Barrier | None = None) -> None:
        self.active = 0
        self.most = 0
        self.lock = threading.Lock()
        self.meet = meet
        self.released = threading.Event()

    def verify(self, _hash: str, _password: str) -> bool:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            if self.meet is not None:
                self.meet.wait(timeout=10)  # all threads inside at once, or BrokenBarrierError
            else:
                self.released.wait(timeout=0.05)  # room for another thread to get in
            return True
        finally:
            with self.lock:
                self.active -= 1


def _verify_in_threads(app: Flask, threads: int) -> None:
    def one(_: int) -> bool:
        with app.app_context():
            return security.verify_password("hash", "password")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        assert all(pool.map(one, range(threads)))


@pytest.fixture
def flask_app() -> Flask:
    app = Flask("hashing-test")
    app.config["ARGON2_MAX_WAITING"] = 8  # every thread waits its turn: none is refused
    app.config["ARGON2_QUEUE_TIMEOUT"] = 30.0
    return app


def test_one_hash_at_a_time_by_default(flask_app, monkeypatch):
    flask_app.config["ARGON2_MAX_CONCURRENT"] = 1
    hasher = CountingHasher()
    monkeypatch.setattr(security, "password_hasher", lambda: hasher)
    _verify_in_threads(flask_app, 6)
    assert hasher.most == 1


def test_the_limit_is_configurable(flask_app, monkeypatch):
    flask_app.config["ARGON2_MAX_CONCURRENT"] = 3
    hasher = CountingHasher(meet=threading.Barrier(3))
    monkeypatch.setattr(security, "password_hasher", lambda: hasher)
    _verify_in_threads(flask_app, 3)  # three threads meet inside: three at once are allowed
    assert hasher.most == 3


def test_zero_means_no_limit(flask_app, monkeypatch):
    flask_app.config["ARGON2_MAX_CONCURRENT"] = 0
    hasher = CountingHasher(meet=threading.Barrier(5))
    monkeypatch.setattr(security, "password_hasher", lambda: hasher)
    _verify_in_threads(flask_app, 5)
    assert hasher.most == 5
