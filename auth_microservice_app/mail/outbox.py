"""The transactional email outbox: no message is lost when the broker is down.

A service adds an outbox row in the same transaction as the change that asks for the mail, then
(after commit) asks Celery to deliver it. If the broker is unreachable the row simply waits:
the periodic ``auth.drain_outbox`` task (and every worker start) delivers what is pending.

Rows name what to send (a kind and ids or an address), never a link token: the token is minted
at delivery, so no raw token rests in the database, and requests for unknown addresses cost the
web request exactly what requests for known ones cost (one row, one publish).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, current_app, has_app_context
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import ColumnElement, func, or_, select

from .. import audit, metrics
from ..audit import Event
from ..extensions import db
from ..identity import ownership
from ..identity.users import find_user_by_email
from ..models import EmailOutbox, User
from ..models.base import utcnow
from . import links
from . import messages as mail

logger = logging.getLogger(__name__)

VERIFY_EMAIL = "verify_email"  # payload: user_id
VERIFY_EMAIL_REQUEST = "verify_email_request"  # payload: email
PASSWORD_RESET_REQUEST = "password_reset_request"  # noqa: S105 - payload: email
MAGIC_LINK_REQUEST = "magic_link_request"  # payload: email
SECURITY_NOTICE = "security_notice"  # payload: user_id, notice, context
EMAIL_CHANGE = "email_change"  # payload: token_id (a reserved link, see links.reserve)
EMAIL_CHANGE_NOTICE = "email_change_notice"  # payload: user_id, to, new_email (masked), stage
ACCOUNT_DELETED = "account_deleted"  # payload: email, when (the user row is gone by then)
#: Kinds whose payload is emptied once delivered (or given up): it names a deleted person.
SCRUBBED_AFTER_DELIVERY = frozenset({ACCOUNT_DELETED})


def naming(user_id: uuid.UUID, email: str) -> ColumnElement[bool]:
    """Rows whose payload names the user: by id, or by address (a reset request, a notice to
    an address the account had)."""
    payload = EmailOutbox.payload
    return or_(
        payload["user_id"].as_string() == str(user_id),
        func.lower(payload["email"].as_string()) == email.lower(),
        func.lower(payload["to"].as_string()) == email.lower(),
    )


def add(kind: str, **payload: Any) -> EmailOutbox:
    """Queue a message in the current transaction; the caller commits.

    Committed rows are handed to a worker at the end of the request (:func:`init_app`).
    """
    row = EmailOutbox(id=uuid.uuid4(), kind=kind, payload=payload, status="pending", attempts=0)
    db.session.add(row)
    db.session.info.setdefault(_QUEUED, []).append(row.id)
    metrics.get().emails.labels(status="queued").inc()
    return row


_QUEUED = "outbox_queued"


def dispatch_committed() -> None:
    """Hand each row this session added and committed to a worker.

    With a broker, a Celery task each; without one, the in-process delivery thread
    (:class:`LocalDelivery`). Either way the request only hands over: it never builds or sends
    the message itself, so an address with an account and one without take the same path and
    the same time. A broker outage loses nothing: the row stays pending and the drain delivers
    it later. Rows of a rolled-back transaction do not exist, and deliver() finds nothing to do.
    """
    queued = db.session.info.pop(_QUEUED, [])
    if not queued:
        return
    if not current_app.config.get("CELERY_BROKER_URL"):
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        for outbox_id in queued:
            LOCAL_DELIVERY.submit(app, outbox_id)
        return
    task = current_app.extensions["celery"].tasks["auth.deliver_email"]
    for outbox_id in queued:
        try:
            task.apply_async(args=[str(outbox_id)], retry=False)
        except Exception as exc:  # noqa: BLE001 - kombu raises many types; the row is safe
            logger.warning(
                "broker unavailable; email kept in the outbox",
                extra={"error_type": type(exc).__name__},
            )


class LocalDelivery:
    """Without a broker: one daemon thread per process delivers outbox rows after the request.

    Each row gets one delivery attempt (:func:`deliver`), in an
    application context of the app that queued it. When idle for ``EMAIL_OUTBOX_DRAIN_AGE``
    seconds it drains what a crash or restart left pending, the work Celery beat does when a
    broker exists. Started on first use, so every gunicorn worker gets its own after the fork.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Flask, uuid.UUID | None]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._apps: weakref.WeakValueDictionary[int, Flask] = weakref.WeakValueDictionary()

    def submit(self, app: Flask, outbox_id: uuid.UUID | None) -> None:
        """Queue one row (None: drain the app's pending rows) and return at once."""
        with self._lock:
            self._apps[id(app)] = app
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="email-delivery", daemon=True
                )
                self._thread.start()
        self._queue.put((app, outbox_id))

    def join(self) -> None:
        """Wait until everything queued so far has been handled (tests, orderly shutdown)."""
        self._queue.join()

    def _run(self) -> None:
        last_drain: dict[int, float] = {}
        while True:
            try:
                app, outbox_id = self._queue.get(timeout=1.0)
            except queue.Empty:
                now = time.monotonic()
                for key, app in list(self._apps.items()):
                    if now - last_drain.setdefault(key, now) >= self._drain_every(app):
                        last_drain[key] = now
                        self._queue.put((app, None))
                continue
            try:
                self._handle(app, outbox_id)
            finally:
                self._queue.task_done()

    @staticmethod
    def _drain_every(app: Flask) -> float:
        return float(max(int(app.config["EMAIL_OUTBOX_DRAIN_AGE"]), 1))

    @staticmethod
    def _handle(app: Flask, outbox_id: uuid.UUID | None) -> None:
        """One attempt; a transient failure leaves the row pending for the drain (with its
        back-off), never several attempts back to back that a short outage would exhaust."""
        with app.app_context():
            try:
                if outbox_id is None:
                    drain()
                else:
                    deliver(outbox_id)
            except mail.TransientEmailError as exc:
                logger.warning(
                    "email delivery failed; kept for a later attempt",
                    extra={"error_type": type(exc).__name__},
                )
            except Exception:  # the row stays pending; the next drain retries it
                logger.exception("in-process email delivery failed")
            finally:
                db.session.remove()


LOCAL_DELIVERY = LocalDelivery()


def _dispatch_after_request(response: Response) -> Response:
    # Only a request that opened a database session can have queued mail; asking db.session
    # on the others would create a session just to find it empty.
    if db.session.registry.has():
        dispatch_committed()
    return response


def init_app(app: Flask) -> None:
    app.after_request(_dispatch_after_request)
    app.extensions["metrics_registry"].register(OutboxCollector())


def _link(action: str, token: str) -> str:
    return f"{current_app.config['FRONTEND_URL'].rstrip('/')}/{action}?token={token}"


#: purpose -> (email template, the frontend page the link opens)
LINKS = {
    links.VERIFY_EMAIL: ("verify_email", "verify-email"),
    links.RESET_PASSWORD: ("reset_password", "reset-password"),
    links.MAGIC_LINK: ("magic_link", "magic-link"),
}


def _link_message(user: User | None, purpose: str) -> mail.Message | None:
    """A message carrying a freshly minted link token, or None when nothing should be sent."""
    if user is None or not user.is_active:
        return None
    if purpose == links.VERIFY_EMAIL and (user.email_verified or ownership.is_expired(user)):
        return None
    template, action = LINKS[purpose]
    ttl = links.ttl(purpose)
    token = links.issue(user.id, purpose)
    return mail.render(
        template,
        user.email,
        name=_greeting_name(user),
        link=_link(action, token),
        valid_hours=ttl // 3600,
        valid_minutes=ttl // 60,
    )


def _notice(payload: dict[str, Any]) -> mail.Message | None:
    user = db.session.get(User, uuid.UUID(payload["user_id"]))
    if user is None or payload["notice"] not in mail.TEMPLATES:
        return None
    context = payload.get("context", {})
    return mail.render(payload["notice"], user.email, name=_greeting_name(user), **context)


def _greeting_name(user: User) -> str | None:
    """The name is whatever the registrant typed: it reaches a mailbox only once proven, or
    anyone could mail their text to any address from us."""
    return user.name if user.email_verified else None


def _user(payload: dict[str, Any]) -> User | None:
    return db.session.get(User, uuid.UUID(payload["user_id"]))


def _email_change_link(payload: dict[str, Any]) -> mail.Message | None:
    """The confirmation link of an email change, to the new address, if no later request
    voided its reservation (:func:`.links.arm`)."""
    armed = links.arm(uuid.UUID(payload["token_id"]), links.CHANGE_EMAIL)
    if armed is None:
        return None
    token, user_id, new_email = armed
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    ttl = links.ttl(links.CHANGE_EMAIL)
    return mail.render(
        "email_change",
        new_email,
        name=_greeting_name(user),
        link=_link("confirm-email-change", token),
        valid_hours=ttl // 3600,
    )


def _email_change_notice(payload: dict[str, Any]) -> mail.Message | None:
    """To the address the account had when the change was asked for (``to``), not to whatever
    it has at delivery: a notice delivered late must still reach the old mailbox."""
    user = _user(payload)
    if user is None:
        return None
    return mail.render(
        "email_change_notice",
        payload["to"],
        name=_greeting_name(user),
        new_email=payload["new_email"],
        stage=payload["stage"],
        when=payload["when"],
    )


BUILDERS: dict[str, Callable[[dict[str, Any]], mail.Message | None]] = {
    VERIFY_EMAIL: lambda p: _link_message(_user(p), links.VERIFY_EMAIL),
    VERIFY_EMAIL_REQUEST: lambda p: _link_message(
        find_user_by_email(p["email"]), links.VERIFY_EMAIL
    ),
    PASSWORD_RESET_REQUEST: lambda p: _link_message(
        find_user_by_email(p["email"]), links.RESET_PASSWORD
    ),
    MAGIC_LINK_REQUEST: lambda p: _link_message(find_user_by_email(p["email"]), links.MAGIC_LINK),
    SECURITY_NOTICE: _notice,
    EMAIL_CHANGE: _email_change_link,
    EMAIL_CHANGE_NOTICE: _email_change_notice,
    ACCOUNT_DELETED: lambda p: mail.render("account_deleted", p["email"], when=p["when"]),
}


def deliver(outbox_id: uuid.UUID) -> str:
    """Build and send one pending message; returns its new status.

    The row is locked (``SKIP LOCKED``) for the whole delivery, so two workers never send it
    twice; the link token is minted in the same transaction and committed only once sent.

    :raises TransientEmailError: recorded on the row; the caller retries later.
    """
    row = db.session.execute(
        select(EmailOutbox)
        .where(EmailOutbox.id == outbox_id, EmailOutbox.status == "pending")
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if row is None:
        db.session.rollback()
        return "gone"
    kind, attempts = row.kind, row.attempts
    try:
        message = BUILDERS[kind](row.payload)
        if message is not None:
            mail.send(message)
    except mail.TransientEmailError as exc:
        db.session.rollback()
        _record_attempt(outbox_id, attempts + 1, str(exc), give_up=False)
        raise
    except mail.PermanentEmailError as exc:
        db.session.rollback()
        _record_attempt(outbox_id, attempts + 1, str(exc), give_up=True)
        return "failed"
    row.status = "sent" if message is not None else "skipped"
    row.attempts = attempts + 1
    row.processed_at = utcnow()
    if kind in SCRUBBED_AFTER_DELIVERY:
        row.payload = {}
    db.session.commit()
    if message is not None:
        audit.record(Event.EMAIL_SENT, kind=kind)
    else:
        metrics.get().emails.labels(status="skipped").inc()
    return row.status


def _record_attempt(outbox_id: uuid.UUID, attempts: int, error: str, *, give_up: bool) -> None:
    row = db.session.get(EmailOutbox, outbox_id)
    if row is None:
        return
    row.attempts = attempts
    row.last_error = error[:200]
    if give_up or attempts >= current_app.config["EMAIL_MAX_ATTEMPTS"]:
        row.status = "failed"
        row.processed_at = utcnow()
        if row.kind in SCRUBBED_AFTER_DELIVERY:
            row.payload = {}
        logger.error("email delivery failed for good", extra={"kind": row.kind, "error": error})
        audit.record(Event.EMAIL_FAILED, kind=row.kind, reason=error[:100])
    db.session.commit()


def retry_after(attempts: int) -> timedelta:
    """How long a row that failed ``attempts`` times waits before the drain tries it again:
    ``EMAIL_OUTBOX_DRAIN_AGE`` doubled per failure, at most an hour, so a short provider outage
    spends a few attempts, not all ``EMAIL_MAX_ATTEMPTS`` of them back to back."""
    base = int(current_app.config["EMAIL_OUTBOX_DRAIN_AGE"])
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


def drain(*, limit: int = 500) -> int:
    """Deliver rows pending longer than ``EMAIL_OUTBOX_DRAIN_AGE`` (the broker may lose some),
    each failed one only once its :func:`retry_after` has passed."""
    now = utcnow()
    horizon = now - timedelta(seconds=current_app.config["EMAIL_OUTBOX_DRAIN_AGE"])
    rows = db.session.execute(
        select(EmailOutbox.id, EmailOutbox.attempts, EmailOutbox.updated_at)
        .where(EmailOutbox.status == "pending", EmailOutbox.created_at <= horizon)
        .order_by(EmailOutbox.created_at)
        .limit(limit)
    ).all()
    db.session.rollback()
    ids = [
        row.id
        for row in rows
        if not row.attempts or _aware(row.updated_at) + retry_after(row.attempts) <= now
    ]
    delivered = 0
    for outbox_id in ids:
        try:
            delivered += deliver(outbox_id) in {"sent", "skipped"}
        except mail.TransientEmailError:
            continue
    return delivered


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def stats() -> dict[str, Any]:
    """Counts by status and the age of the oldest pending message: what an operator watches."""
    counts = dict(
        db.session.execute(
            select(EmailOutbox.status, func.count()).group_by(EmailOutbox.status)
        ).all()
    )
    oldest = db.session.execute(
        select(func.min(EmailOutbox.created_at)).where(EmailOutbox.status == "pending")
    ).scalar_one_or_none()
    if oldest is None:
        age = 0.0
    elif oldest.tzinfo is None:  # SQLite drops the zone in aggregates
        age = (utcnow().replace(tzinfo=None) - oldest).total_seconds()
    else:
        age = (utcnow() - oldest).total_seconds()
    return {"counts": counts, "oldest_pending_seconds": round(age, 1)}


class OutboxCollector:
    """Email outbox gauges read from the database at scrape time.

    Delivery happens in Celery workers (or this process's delivery thread), which export
    nothing; the outbox table is the truth every API process can see, so the backlog is
    measured there. Registered by :func:`init_app` on the app's metrics registry.
    """

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not has_app_context():
            return
        try:
            backlog = stats()
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database did
            return
        messages = GaugeMetricFamily(
            "auth_email_outbox_messages", "Outbox rows by status.", labels=["status"]
        )
        for status in ("pending", "sent", "skipped", "failed"):
            messages.add_metric([status], float(backlog["counts"].get(status, 0)))
        yield messages
        yield GaugeMetricFamily(
            "auth_email_outbox_oldest_pending_seconds",
            "Age of the oldest message still waiting for delivery.",
            value=float(backlog["oldest_pending_seconds"]),
        )
