"""WSGI entry point: `gunicorn auth_microservice_app.wsgi:app`."""

from .app import create_app

app = create_app()
