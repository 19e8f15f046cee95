"""Backends and the outbox: SendGrid (local fake), SMTP (a real SMTP sink), retries, templates."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from werkzeug import Request, Response

from auth_microservice_app.extensions import db
from auth_microservice_app.mail import messages as mail
from auth_microservice_app.mail import outbox
from auth_microservice_app.models import EmailOutbox
from tests.smtp_server import smtp_server

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("template", mail.TEMPLATES)
def test_every_template_renders_text_and_html(app, template):
    context = {
        "name": "Ada <script>",
        "link": "https://app.test/x?token=abc",
        "valid_hours": 48,
        "valid_minutes": 15,
        "how": "change",
        "when": "2026-12-01 10:00 UTC",
        "user_agent": "Phone/1",
        "ip": "203.0.113.9",
        "provider": "Google",
    }
    with app.test_request_context():
        message = mail.render(template, "ada@example.com", **context)
        mime = mail.to_mime(message)
    assert message.subject and "\n" not in message.subject
    assert "Ada <script>" in message.text
    assert "Ada &lt;script&gt;" in message.html and "<script>" not in message.html
    assert message.html.lstrip().startswith("<!doctype html>")
    if "link" in message.text or template in {"verify_email", "reset_password", "magic_link"}:
        assert "https://app.test/x?token=abc" in message.text
    assert mime.get_body(preferencelist=("plain",)) is not None
    assert mime.get_body(preferencelist=("html",)) is not None


def queue_reset(app, email: str = "ada@example.com") -> str:
    with app.test_request_context():
        row = outbox.add(outbox.PASSWORD_RESET_REQUEST, email=email)
        db.session.commit()
        return str(row.id)


def outbox_row(app, outbox_id: str) -> EmailOutbox:
    with app.app_context():
        row = db.session.execute(
            select(EmailOutbox).where(EmailOutbox.id == outbox_id)
        ).scalar_one()
        db.session.expunge(row)
        return row


@pytest.fixture
def sendgrid_app(app, httpserver):
    previous = {
        k: app.config[k] for k in ("EMAIL_BACKEND", "SENDGRID_API_KEY", "SENDGRID_API_HOST")
    }
    app.config.update(
        EMAIL_BACKEND="sendgrid",
        SENDGRID_API_KEY="SG.test-key",
        SENDGRID_API_HOST=httpserver.url_for(""),
    )
    yield app
    app.config.update(previous)


def test_sendgrid_backend_sends_what_the_api_expects(sendgrid_app, auth, httpserver):
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response("", status=202)

    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_handler(handler)
    auth.register("ada@example.com")
    outbox.LOCAL_DELIVERY.join()
    assert len(seen) == 1
    request = seen[0]
    assert request.headers["Authorization"] == "Bearer SG.test-key"
    body = json.loads(request.get_data())
    assert body["personalizations"] == [{"to": [{"email": "ada@example.com"}]}]
    assert body["from"]["email"] == "no-reply@localhost"
    assert "Confirm your email" in body["subject"]
    assert [part["type"] for part in body["content"]] == ["text/plain", "text/html"]
    assert "https://app.test/verify-email?token=" in body["content"][0]["value"]


def test_sendgrid_5xx_is_transient_and_recorded_then_retried(sendgrid_app, auth, httpserver):
    httpserver.expect_request("/v3/mail/send").respond_with_data("", status=202)
    auth.register("ada@example.com")
    outbox.LOCAL_DELIVERY.join()
    httpserver.clear()
    httpserver.expect_ordered_request("/v3/mail/send").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/v3/mail/send").respond_with_data("", status=202)
    outbox_id = queue_reset(sendgrid_app)
    with sendgrid_app.app_context(), pytest.raises(mail.TransientEmailError):
        outbox.deliver(uuid.UUID(outbox_id))
    row = outbox_row(sendgrid_app, outbox_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "sendgrid 503")
    with sendgrid_app.app_context():
        assert outbox.deliver(row.id) == "sent"
    assert outbox_row(sendgrid_app, outbox_id).status == "sent"


def test_sendgrid_4xx_is_permanent_and_gives_up(sendgrid_app, auth, httpserver, caplog):
    httpserver.expect_request("/v3/mail/send").respond_with_data("", status=202)
    auth.register("ada@example.com")
    outbox.LOCAL_DELIVERY.join()
    httpserver.clear()
    httpserver.expect_request("/v3/mail/send").respond_with_data('{"errors":[]}', status=400)
    outbox_id = queue_reset(sendgrid_app)
    with sendgrid_app.app_context():
        assert outbox.deliver(uuid.UUID(outbox_id)) == "failed"
    row = outbox_row(sendgrid_app, outbox_id)
    assert (row.status, row.last_error) == ("failed", "sendgrid 400")
    assert any(r.message == "email delivery failed for good" for r in caplog.records)


class Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    with smtp_server(sink) as port:
        yield sink, port


def test_smtp_backend_delivers_to_a_real_smtp_server(app, auth, smtp_sink):
    sink, port = smtp_sink
    previous = {
        k: app.config[k] for k in ("EMAIL_BACKEND", "SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY")
    }
    app.config.update(
        EMAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none"
    )
    try:
        auth.register("ada@example.com")
        outbox.LOCAL_DELIVERY.join()  # delivered after the request, with this configuration
    finally:
        app.config.update(previous)
    assert len(sink.messages) == 1
    assert b"To: ada@example.com" in sink.messages[0]
    assert b"https://app.test/verify-email?token=" in sink.messages[0]


def test_outbox_stats_show_stuck_mail(app):
    queue_reset(app)  # never dispatched: what a broker outage leaves behind
    with app.app_context():
        stats = outbox.stats()
    assert stats["counts"] == {"pending": 1}
    assert stats["oldest_pending_seconds"] >= 0
    result = app.test_cli_runner().invoke(args=["email", "outbox"])
    assert "pending  1" in result.output
