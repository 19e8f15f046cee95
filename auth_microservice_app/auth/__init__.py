"""Accounts and sessions: `/api/v1/auth`."""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")

from . import routes  # noqa: E402,F401 - routes attach themselves to bp
