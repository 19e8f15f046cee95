"""The application factory: reads like a table of contents."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import apidocs, cli, database, health, metrics, wellknown
from . import models as _models  # noqa: F401 - every model registered before Alembic or a query
from . import tasks as _tasks  # noqa: F401 - the shared tasks register themselves on import
from .admin import bp as admin_bp
from .auth import bp as auth_bp
from .config import BaseConfig, load_config, sqlalchemy_url
from .errors import register_error_handlers
from .extensions import celery_init_app, db, jwt, migrate
from .flask_app import AuthFlask
from .identity import tokens
from .logging_setup import configure_logging
from .mail import outbox
from .middleware import auth as auth_middleware
from .middleware import cors as cors_middleware
from .middleware import rate_limit, request_context, security_headers
from .oauth import bp as oauth_bp
from .oauth2 import bp as oauth2_bp
from .oauth2 import server as oauth2_server
from .tasks import maintenance
from .two_factor import bp as two_factor_bp
from .utils import redis_client

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(config: str | BaseConfig | None = None, **overrides: Any) -> Flask:
    """Build the app for ``config`` (an ``APP_ENV`` name or a config object), plus overrides."""
    if config is None or isinstance(config, str):
        _load_dotenv(config)
        config = load_config(config)
    for name, value in overrides.items():
        setattr(config, name, value)
    config.validate()

    # The package name, not __name__: under `python -m auth_microservice_app.app` __name__ is
    # "__main__", which would move the instance folder (and the SQLite file) elsewhere.
    app = AuthFlask("auth_microservice_app", instance_relative_config=True)
    app.config.from_object(config)
    configure_database(app, config)
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    register_extensions(app)
    register_blueprints(app)
    register_middleware(app)
    register_error_handlers(app)
    cli.register_commands(app)
    return app


def _load_dotenv(name: str | None) -> None:
    # `.env` is a development convenience; a deployed service takes its environment as given.
    if (name or os.environ.get("APP_ENV", "development")) == "development":
        from dotenv import load_dotenv

        load_dotenv(override=False)


def configure_database(app: Flask, config: BaseConfig) -> None:
    os.makedirs(app.instance_path, exist_ok=True)
    uri = sqlalchemy_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if uri == "sqlite:///auth.db":  # the embedded default lives in the instance folder
        uri = f"sqlite:///{Path(app.instance_path) / 'auth.db'}"
    config.SQLALCHEMY_DATABASE_URI = app.config["SQLALCHEMY_DATABASE_URI"] = uri
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = config.engine_options()


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if app.config["DB_POOL_PRE_PING"] and uri.startswith("postgresql"):
        with app.app_context():
            database.ping_idle_connections(db.engine, app.config["DB_POOL_PING_AFTER"])
    if uri.startswith("sqlite"):
        with app.app_context():
            database.share_sqlite(db.engine)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    tokens.init_app(app)
    jwt.init_app(app)
    redis_client.init_app(app)
    celery_init_app(app)
    metrics.init_app(app)


def register_middleware(app: Flask) -> None:
    """Request hooks; after the blueprints, because limits and HTTPS exemptions name endpoints."""
    if app.config["TRUSTED_PROXIES"] > 0:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    request_context.init_app(app)
    auth_middleware.init_app(app)
    cors_middleware.init_app(app)
    security_headers.init_app(app)
    rate_limit.init_app(app)
    outbox.init_app(app)
    maintenance.init_app(app)  # the purge's counts in /metrics


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(health.bp)
    app.register_blueprint(wellknown.bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(two_factor_bp)
    app.register_blueprint(oauth_bp)
    app.register_blueprint(oauth2_bp)
    app.register_blueprint(admin_bp)
    oauth2_server.init_app(app)
    apidocs.init_app(app)  # after every blueprint: the docs are built from the url map


def run_development_server(app: Flask) -> None:
    """`make dev`: Werkzeug's server, with the reloader and debugger in development (DEBUG).

    The app writes one access line per request itself (middleware/request_context.py), so
    Werkzeug's own line per request is left out; its start-up lines and errors stay.
    `make run` serves with gunicorn instead, as production does.
    """
    from werkzeug.serving import WSGIRequestHandler

    class OneAccessLine(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return None

    app.run(host=app.config["HOST"], port=app.config["PORT"], request_handler=OneAccessLine)


if __name__ == "__main__":
    run_development_server(create_app())
