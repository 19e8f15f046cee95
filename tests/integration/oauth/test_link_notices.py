"""Every provider link and unlink tells the account owner by email (sign-up does not)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import EmailOutbox
from tests.conftest import Mailbox
from tests.integration.oauth.conftest import (
    CALLBACK,
    GoogleFlow,
    bearer,
    browser,
    confirm_link,
    drive_provider,
    linked_accounts,
    local,
    login,
    query,
    register,
    start_link,
)

pytestmark = pytest.mark.integration

LINKED = "Google sign-in was added to your"
UNLINKED = "Google sign-in was removed from your"
WHEN = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def notices(mailbox: Mailbox, address: str, subject: str) -> list[Any]:
    return [m for m in mailbox.to(address) if subject in m["Subject"]]


def assert_notice(mailbox: Mailbox, message: Any, action: str) -> None:
    for body in (mailbox.text(message), mailbox.html(message)):
        assert f"Google sign-in was {action}" in body
        assert WHEN.search(body), body
        assert "support@" in body or "contact" in body


def link_code(client, access: str, login_as: str = "verified") -> str:
    url = drive_provider(start_link(client, access), login=login_as, stop_at=CALLBACK)
    return query(client.get(local(url)).headers["Location"])["link_code"]


def test_confirmed_link_sends_the_provider_linked_notice(
    google_app: Flask, google_mailbox: Mailbox
):
    client = google_app.test_client()
    register(client, "ada@example.com", verified=True, app=google_app)
    access = login(client, "ada@example.com")["access_token"]
    code = link_code(client, access)
    assert notices(google_mailbox, "ada@example.com", LINKED) == []  # the callback sends none
    assert confirm_link(client, access, code).status_code == 200
    [message] = notices(google_mailbox, "ada@example.com", LINKED)
    assert_notice(google_mailbox, message, "added")
    # the provider's address learns nothing
    assert google_mailbox.to("vera@example.com") == []


def test_automatic_link_by_verified_email_sends_the_notice(
    google_flow: GoogleFlow, google_app: Flask, google_mailbox: Mailbox
):
    register(google_flow.client, "vera@example.com", verified=True, app=google_app)
    google_flow.sign_in("verified")
    [message] = notices(google_mailbox, "vera@example.com", LINKED)
    assert_notice(google_mailbox, message, "added")


def test_sign_up_with_a_provider_sends_no_link_notice(
    google_flow: GoogleFlow, google_app: Flask, google_mailbox: Mailbox
):
    google_flow.sign_in("verified")
    assert notices(google_mailbox, "vera@example.com", LINKED) == []
    # control: this mailbox does receive the app's mail
    register(google_flow.client, "control@example.com", verified=False, app=google_app)
    assert google_mailbox.to("control@example.com")


def test_unlink_sends_the_provider_unlinked_notice(
    google_flow: GoogleFlow, google_app: Flask, google_mailbox: Mailbox
):
    register(google_flow.client, "vera@example.com", verified=True, app=google_app)
    google_flow.sign_in("verified")
    access = login(google_flow.client, "vera@example.com")["access_token"]
    assert (
        google_flow.client.delete("/api/v1/oauth/google", headers=bearer(access)).status_code == 204
    )
    [message] = notices(google_mailbox, "vera@example.com", UNLINKED)
    assert_notice(google_mailbox, message, "removed")


def test_refused_link_or_unlink_sends_nothing(
    google_flow: GoogleFlow, google_app: Flask, google_mailbox: Mailbox
):
    # a confirmation by another user (403), and the last sign-in method (409)
    ada_browser = browser(google_app, "ada-browser", "203.0.113.1")
    register(ada_browser, "ada@example.com", verified=True, app=google_app)
    ada = login(ada_browser, "ada@example.com")["access_token"]
    register(google_flow.client, "bob@example.com", verified=True, app=google_app)
    bob = login(google_flow.client, "bob@example.com")["access_token"]
    assert confirm_link(google_flow.client, bob, link_code(ada_browser, ada)).status_code == 403
    vera = google_flow.sign_in("other")["access_token"]  # an OAuth-only account
    assert (
        google_flow.client.delete("/api/v1/oauth/google", headers=bearer(vera)).status_code == 409
    )
    for address in ("ada@example.com", "bob@example.com", "otto@example.com"):
        assert notices(google_mailbox, address, LINKED) == []
        assert notices(google_mailbox, address, UNLINKED) == []
    assert len(linked_accounts(google_app)) == 1  # otto's, from his sign-up
    assert google_mailbox.to("ada@example.com")  # control: the verification email arrived


def test_link_notice_is_queued_with_the_link(google_app: Flask, google_mailbox: Mailbox):
    # the outbox row commits with the account row: one transaction, no lost or phantom notice
    client = google_app.test_client()
    register(client, "ada@example.com", verified=True, app=google_app)
    access = login(client, "ada@example.com")["access_token"]
    assert confirm_link(client, access, link_code(client, access)).status_code == 200
    with google_app.app_context():
        rows = db.session.execute(
            select(EmailOutbox).where(EmailOutbox.kind == "security_notice")
        ).scalars()
        kinds = [row.payload["notice"] for row in rows]
    assert kinds.count("provider_linked") == 1
