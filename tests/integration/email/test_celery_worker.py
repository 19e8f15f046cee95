"""A real Celery worker on real RabbitMQ: mail is delivered, and nothing is lost while the broker
is down at request time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import EmailOutbox
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, make_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BROKER = os.environ.get("TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1//"


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def worker_logs(directory: Any) -> str:
    return "the mail never arrived; worker log:\n" + "\n".join(
        path.read_text(errors="replace")[-3000:] for path in directory.glob("worker-*.log")
    )


@pytest.fixture
def queue() -> str:
    return f"auth-test-{uuid.uuid4().hex[:8]}"  # no message of another run can reach this test


@pytest.fixture
def start_worker(
    signing_key_pem, tmp_path, queue
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    workers: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []

    def start(mail_dir: str) -> subprocess.Popen[bytes]:
        key_file = tmp_path / "jwt.pem"
        key_file.write_text(signing_key_pem)
        env = {
            **os.environ,
            "APP_ENV": "testing",
            "DATABASE_URL": TEST_DATABASE_URL,
            "REDIS_URL": TEST_REDIS_URL,
            "CELERY_BROKER_URL": BROKER,
            "CELERY_DEFAULT_QUEUE": queue,
            "JWT_PRIVATE_KEY_FILE": str(key_file),
            "EMAIL_BACKEND": "file",
            "EMAIL_FILE_DIR": mail_dir,
            "EMAIL_OUTBOX_DRAIN_AGE": "0",
            "FRONTEND_URL": "https://app.test",
            "LOG_LEVEL": "WARNING",
        }
        log = (tmp_path / f"worker-{len(workers)}.log").open("wb")
        logs.append(log)
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "auth_microservice_app.tasks",
                "worker",
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
                "-Q",
                queue,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    for log in logs:
        log.close()


def test_a_real_worker_delivers_the_verification_mail(
    app, signing_key_pem, start_worker, queue, tmp_path, auth, mailbox
):
    mail_dir = str(tmp_path / "worker-mail")
    start_worker(mail_dir)
    web = make_app(
        signing_key_pem,
        CELERY_BROKER_URL=BROKER,
        CELERY_DEFAULT_QUEUE=queue,
        EMAIL_FILE_DIR=mail_dir,
    )
    auth.client = web.test_client()
    auth.register("ada@example.com")
    mailbox.directory = mail_dir
    assert wait_for(lambda: len(mailbox.to("ada@example.com")) == 1), worker_logs(tmp_path)
    token = mailbox.link_token(mailbox.to("ada@example.com")[0], "verify-email")
    assert auth.client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200


def test_mail_survives_a_broker_outage_and_is_delivered_when_it_is_back(
    app, signing_key_pem, start_worker, queue, tmp_path, auth, mailbox
):
    mail_dir = str(tmp_path / "outage-mail")
    web = make_app(
        signing_key_pem,
        CELERY_BROKER_URL=DEAD_BROKER,
        CELERY_DEFAULT_QUEUE=queue,
        EMAIL_FILE_DIR=mail_dir,
    )
    auth.client = web.test_client()
    started = time.monotonic()
    auth.register("ada@example.com")  # the broker is down: the request still succeeds
    assert time.monotonic() - started < 10
    with web.app_context():
        pending = db.session.execute(select(EmailOutbox.status)).scalars().all()
        db.session.remove()
    assert pending == ["pending"]
    mailbox.directory = mail_dir
    assert mailbox.to("ada@example.com") == []

    start_worker(mail_dir)  # the broker is back: a worker starts and drains the outbox
    assert wait_for(lambda: len(mailbox.to("ada@example.com")) == 1), worker_logs(tmp_path)
    token = mailbox.link_token(mailbox.to("ada@example.com")[0], "verify-email")
    assert auth.client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200
    with web.app_context():
        assert db.session.execute(select(EmailOutbox.status)).scalars().all() == ["sent"]
        db.session.remove()


def test_a_prefork_worker_child_opens_its_own_database_connections(make_other_app):
    """The worker's main process made the app (and ran queries) before forking its children
    (worker-deployment.yaml runs --concurrency=2): a child must not reuse those connections."""
    from celery.signals import worker_process_init
    from sqlalchemy import text
    from sqlalchemy.pool import QueuePool

    app = make_other_app()
    with app.app_context():
        db.session.execute(text("SELECT 1"))
        db.session.remove()
        inherited = db.engine.pool
        assert isinstance(inherited, QueuePool)
        assert inherited.checkedin() == 1
    worker_process_init.send(sender=None)  # what Celery sends in each child after the fork
    with app.app_context():
        fresh = db.engine.pool
        assert fresh is not inherited
        assert isinstance(fresh, QueuePool)
        assert fresh.checkedin() == 0
