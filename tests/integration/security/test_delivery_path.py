"""Finding 5: without a broker, the requests that name an address must not deliver mail.

The attack: with no broker configured, delivery used to run inside the request, and only for
addresses that have an account, so the answer came measurably later for them (2.5-10 ms with
the console backend, the whole SMTP exchange with a real server). Here the SMTP server holds
every message until the test lets it go: a request that delivers inside itself cannot answer
before that, one that hands the message to the delivery thread answers at once. Both kinds of
address must answer while the server still holds everything.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from auth_microservice_app.extensions import db
from auth_microservice_app.mail.outbox import LOCAL_DELIVERY
from auth_microservice_app.models import EmailOutbox
from auth_microservice_app.models.base import utcnow
from tests.conftest import AuthActions
from tests.smtp_server import smtp_server

pytestmark = pytest.mark.integration
API = "/api/v1/auth"
#: Long enough for any loaded CI machine to answer a request that does not wait on SMTP.
ANSWER_WITHIN = 20.0


class HeldSink:
    """An SMTP server that accepts each message only once ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.recipients: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait)
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def held_sink() -> Iterator[tuple[HeldSink, int]]:
    sink = HeldSink()
    with smtp_server(sink) as port:
        try:
            yield sink, port
        finally:
            sink.release.set()
            LOCAL_DELIVERY.join()


def answered_in_time(request: Any) -> Any:
    """The response of ``request()``, or None if it is still waiting after ANSWER_WITHIN."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(request()), daemon=True)
    thread.start()
    thread.join(ANSWER_WITHIN)
    return box[0] if box else None


def test_requests_for_known_and_unknown_addresses_answer_before_any_mail_goes(
    make_other_app, held_sink
):
    sink, port = held_sink
    app = make_other_app(
        EMAIL_BACKEND="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        SMTP_SECURITY="none",
        EMAIL_TIMEOUT=60,
        CELERY_BROKER_URL=None,
    )
    client = app.test_client()
    body = {"email": "known@example.com", "password": "correct horse battery staple"}
    registered = answered_in_time(lambda: client.post(f"{API}/register", json=body))
    assert registered is not None and registered.status_code == 201

    for path in ("/password/forgot", "/magic-link", "/verify-email/resend"):
        for email in ("known@example.com", "nobody@example.com"):
            answer = answered_in_time(
                lambda p=path, e=email: client.post(API + p, json={"email": e})
            )
            assert answer is not None, f"{path} for {email} waited on the SMTP server"
            assert answer.status_code == 202

    assert sink.recipients == []  # nothing was sent while the requests ran...
    sink.release.set()
    LOCAL_DELIVERY.join()
    # ...and afterwards the worker sent the mail of the known address only
    assert sink.recipients and set(sink.recipients) == {"known@example.com"}


@pytest.mark.config(EMAIL_OUTBOX_DRAIN_AGE=1)
def test_the_delivery_thread_drains_what_a_restart_left_pending(configured_app, mailbox):
    """Without a broker there is no beat: the thread itself re-sends, when idle, rows that a
    crash or a restart left pending longer than EMAIL_OUTBOX_DRAIN_AGE."""
    app = configured_app
    client = app.test_client()
    AuthActions(client).register("left@example.com")
    with app.app_context():
        db.session.add(
            EmailOutbox(
                id=uuid.uuid4(),
                kind="password_reset_request",
                payload={"email": "left@example.com"},
                status="pending",
                attempts=0,
                created_at=utcnow() - timedelta(minutes=5),
            )
        )
        db.session.commit()
    deadline = time.monotonic() + ANSWER_WITHIN
    while time.monotonic() < deadline and len(mailbox.to("left@example.com")) < 2:
        time.sleep(0.1)  # waiting for the idle drain, not measuring it
    subjects = [message["Subject"] for message in mailbox.to("left@example.com")]
    assert len(subjects) == 2 and any("password" in s.lower() for s in subjects), subjects


class FlakySink:
    """An SMTP server that answers 451 (try later) until told to accept."""

    def __init__(self) -> None:
        self.accept = False
        self.recipients: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if not self.accept:
            return "451 4.3.0 try again later"
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


def test_a_short_smtp_outage_leaves_the_mail_pending_for_a_later_attempt(make_other_app):
    sink = FlakySink()
    with smtp_server(sink) as port:
        app = make_other_app(
            EMAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none"
        )
        AuthActions(app.test_client()).register("patient@example.com")
        LOCAL_DELIVERY.join()
        with app.app_context():
            row: EmailOutbox = db.session.execute(db.select(EmailOutbox)).scalar_one()
            # one attempt, not EMAIL_MAX_ATTEMPTS back to back: still pending, not failed
            assert (row.status, row.attempts) == ("pending", 1)
            row.created_at = row.updated_at = utcnow() - timedelta(minutes=5)  # back-off passed
            db.session.commit()
        sink.accept = True
        LOCAL_DELIVERY.submit(app, None)  # what the idle drain does
        LOCAL_DELIVERY.join()
        assert sink.recipients == ["patient@example.com"]
