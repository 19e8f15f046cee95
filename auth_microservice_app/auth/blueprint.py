"""The ``auth`` blueprint object, on its own so that its route modules import it without
importing the package that imports them (no import cycle)."""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")
