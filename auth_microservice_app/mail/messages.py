"""Email: render a message from its templates, send it through the configured backend.

Backends (``EMAIL_BACKEND``): ``console`` (the embedded default: prints the message),
``file`` (one RFC 822 ``.eml`` per message in ``EMAIL_FILE_DIR``), ``smtp`` (STARTTLS or SSL)
and ``sendgrid`` (the official client; ``SENDGRID_API_HOST`` lets tests point it at a fake).
A backend raises :class:`TransientEmailError` for what a retry may fix (5xx, timeouts,
connection errors) and :class:`PermanentEmailError` for what it will not (4xx, refused address).
"""

from __future__ import annotations

import secrets
import smtplib
import ssl
import sys
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path
from typing import Any

from flask import current_app, render_template
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

TEMPLATES = (
    "verify_email",
    "reset_password",
    "magic_link",
    "password_changed",
    "new_sign_in",
    "two_factor_enabled",
    "two_factor_disabled",
    "two_factor_reset",
    "provider_linked",
    "provider_unlinked",
    "email_change",
    "email_change_notice",
    "account_deleted",
)


class EmailError(Exception):
    pass


class TransientEmailError(EmailError):
    """Worth retrying later."""


class PermanentEmailError(EmailError):
    """Retrying will not help; give up and record it."""


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str
    html: str


def message_id(domain: str) -> str:
    """A unique ``Message-ID`` from the CSPRNG (``make_msgid`` draws on the shared ``random``
    state, from whatever thread delivers, under the feet of whoever else uses it)."""
    return f"<{secrets.token_hex(16)}@{domain}>"


def render(template: str, to: str, **context: Any) -> Message:
    """Render ``templates/email/<template>/{subject.txt,body.txt,body.html}``."""
    config = current_app.config
    context = {
        "product_name": config["PRODUCT_NAME"],
        "support_email": config["SUPPORT_EMAIL"],
        "frontend_url": config["FRONTEND_URL"].rstrip("/"),
        **context,
    }
    base = f"email/{template}"
    subject = render_template(f"{base}/subject.txt", **context).strip()
    return Message(
        to=to,
        subject=" ".join(subject.split()),
        text=render_template(f"{base}/body.txt", **context),
        html=render_template(f"{base}/body.html", **context),
    )


def to_mime(message: Message) -> EmailMessage:
    config = current_app.config
    mime = EmailMessage()
    mime["From"] = formataddr((config["PRODUCT_NAME"], config["EMAIL_FROM"]))
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Message-ID"] = message_id(config["EMAIL_FROM"].rpartition("@")[2] or "localhost")
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    # also from the CSPRNG: email.generator would draw the boundary from the shared `random`
    mime.set_boundary(f"=_{secrets.token_hex(16)}")
    return mime


def _send_console(message: Message) -> None:
    # Development only (production refuses this backend): the message, link included, goes to
    # the terminal of the person running the service, not to the log stream.
    sys.stdout.write(
        f"\n----- email to {message.to} -----\nSubject: {message.subject}\n\n{message.text}"
        "\n----- end of email -----\n"
    )
    sys.stdout.flush()


def _send_file(message: Message) -> None:
    directory = Path(current_app.config["EMAIL_FILE_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.eml"  # sorts in sending order
    partial = directory / f".{name}.tmp"
    partial.write_bytes(bytes(to_mime(message)))
    partial.rename(directory / name)  # readers never see half a message


def _send_smtp(message: Message) -> None:
    config = current_app.config
    host, port, timeout = config["SMTP_HOST"], config["SMTP_PORT"], config["EMAIL_TIMEOUT"]
    try:
        if config["SMTP_SECURITY"] == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            server = smtplib.SMTP(host, port, timeout=timeout)
        with server:
            if config["SMTP_SECURITY"] == "starttls":
                server.starttls(context=ssl.create_default_context())
            if config["SMTP_USERNAME"]:
                server.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
            server.send_message(to_mime(message))
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentEmailError("recipient refused") from exc
    except smtplib.SMTPResponseException as exc:
        error = PermanentEmailError if 500 <= exc.smtp_code < 600 else TransientEmailError
        raise error(f"smtp {exc.smtp_code}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientEmailError(type(exc).__name__) from exc


def _send_sendgrid(message: Message) -> None:
    config = current_app.config
    client = SendGridAPIClient(api_key=config["SENDGRID_API_KEY"], host=config["SENDGRID_API_HOST"])
    client.client.timeout = config["EMAIL_TIMEOUT"]
    body = {
        "personalizations": [{"to": [{"email": message.to}]}],
        "from": {"email": config["EMAIL_FROM"], "name": config["PRODUCT_NAME"]},
        "subject": message.subject,
        "content": [
            {"type": "text/plain", "value": message.text},
            {"type": "text/html", "value": message.html},
        ],
        "tracking_settings": {"click_tracking": {"enable": False}},  # links carry tokens
    }
    try:
        response = client.send(body)
    except HTTPError as exc:
        status = getattr(exc, "status_code", 500)
        error = TransientEmailError if status >= 500 or status == 429 else PermanentEmailError
        raise error(f"sendgrid {status}") from exc
    except (TimeoutError, OSError) as exc:
        raise TransientEmailError(type(exc).__name__) from exc
    if response.status_code >= 300:
        raise TransientEmailError(f"sendgrid {response.status_code}")


BACKENDS = {
    "console": _send_console,
    "file": _send_file,
    "smtp": _send_smtp,
    "sendgrid": _send_sendgrid,
}


def send(message: Message) -> None:
    """Deliver through ``EMAIL_BACKEND``.

    :raises TransientEmailError: retry later.
    :raises PermanentEmailError: give up.
    """
    BACKENDS[current_app.config["EMAIL_BACKEND"]](message)
