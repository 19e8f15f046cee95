"""The ``oauth`` blueprint object, on its own so that its route modules import it without
importing the package that imports them (no import cycle)."""

from flask import Blueprint

bp = Blueprint("oauth", __name__, url_prefix="/api/v1/oauth")
