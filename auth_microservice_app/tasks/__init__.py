"""Celery tasks. The worker: ``celery -A auth_microservice_app.tasks worker``.

Task modules use ``@shared_task`` and never import the app. The Celery app itself is built
lazily (PEP 562 ``__getattr__``): the web process imports task modules without creating a second
Flask app, while ``celery -A auth_microservice_app.tasks`` asks for ``celery`` and gets the one
bound to a Flask app created from the environment.
"""

from __future__ import annotations

from typing import Any

from . import email, maintenance  # noqa: F401 - registers the tasks


def __getattr__(name: str) -> Any:
    if name in {"celery", "app"}:
        from ..app import create_app

        flask_app = create_app()
        return flask_app.extensions["celery"]
    raise AttributeError(name)
