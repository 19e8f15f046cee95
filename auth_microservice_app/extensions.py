"""Extension objects, unbound: `create_app` initialises them (one app a process, many in tests)."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask, has_app_context
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Named constraints make Alembic migrations portable between SQLite and PostgreSQL.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)


migrate = Migrate()
jwt = JWTManager()  # encodes only: every token is verified by identity.tokens.decode
# The limiter, Talisman and CORS keep per-app settings on their instance, so each app gets its
# own: see middleware/rate_limit.py, middleware/security_headers.py, middleware/cors.py.


def celery_init_app(app: Flask) -> Celery:
    """A Celery app bound to ``app``: tasks run inside its application context.

    Without ``CELERY_BROKER_URL`` tasks run in-process (``task_always_eager``): the embedded
    default needs no broker. Emails then go through the outbox's delivery thread
    (:class:`.auth.outbox.LocalDelivery`), never inside the request that asked for them.
    """
    flask_app = app

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            if has_app_context():  # eager, inside a request of whichever app sent it
                return self.run(*args, **kwargs)
            with flask_app.app_context():
                return self.run(*args, **kwargs)

    broker = app.config.get("CELERY_BROKER_URL")
    celery_app = Celery(app.import_name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=broker or "memory://",
        result_backend=app.config.get("CELERY_RESULT_BACKEND"),
        task_ignore_result=True,
        task_default_queue=app.config["CELERY_DEFAULT_QUEUE"],
        task_always_eager=not broker,
        task_eager_propagates=False,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_connection_timeout=app.config["CELERY_BROKER_TIMEOUT"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        task_publish_retry=False,
        beat_schedule={
            "drain-email-outbox": {"task": "auth.drain_outbox", "schedule": 60.0},
            "purge-expired": {"task": "auth.purge_expired", "schedule": 3600.0},
        },
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app

    def fresh_connections_in_the_child(**_: Any) -> None:
        # A prefork worker child inherits the parent's pooled database connections (create_app
        # ran a query: two_factor's start-up check). Two processes on one socket read each
        # other's answers or wait for ever; each child starts its own pool instead, and
        # close=False leaves the parent's sockets to the parent.
        with flask_app.app_context():
            db.engine.dispose(close=False)

    # A weak reference (Celery's default), held as long as the app by app.extensions.
    worker_process_init.connect(fresh_connections_in_the_child)
    app.extensions["celery_worker_process_init"] = fresh_connections_in_the_child
    return celery_app
