"""Sign in with Google, GitHub and Apple: `/api/v1/oauth`."""

from flask import Blueprint

bp = Blueprint("oauth", __name__, url_prefix="/api/v1/oauth")

from . import routes  # noqa: E402,F401 - routes attach themselves to bp
