"""Email delivery tasks: retries with exponential backoff on transient provider errors."""

from __future__ import annotations

import random
import uuid

from celery import Task, shared_task
from celery.signals import worker_ready
from flask import current_app

from ..mail import outbox
from ..mail.messages import TransientEmailError


def backoff(retries: int) -> int:
    """Seconds before retry ``retries + 1``: 2, 4, 8... capped at 10 minutes, with jitter."""
    return int(min(2 ** (retries + 1), 600) * random.uniform(0.8, 1.2))  # noqa: S311 - jitter


@shared_task(name="auth.deliver_email", bind=True, acks_late=True, max_retries=None)
def deliver_email(self: Task, outbox_id: str) -> str:
    """Deliver one outbox row; transient failures retry until ``EMAIL_MAX_ATTEMPTS``."""
    try:
        return outbox.deliver(uuid.UUID(outbox_id))
    except TransientEmailError as exc:
        if self.request.retries + 1 >= current_app.config["EMAIL_MAX_ATTEMPTS"]:
            return "failed"
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc


@shared_task(name="auth.drain_outbox")
def drain_outbox() -> int:
    """Deliver what waited in the outbox (the broker was down, or a worker died mid-way)."""
    return outbox.drain()


@worker_ready.connect
def _drain_at_start(sender: object = None, **_: object) -> None:
    # A worker that starts after an outage delivers the backlog without waiting for beat.
    drain_outbox.delay()
