"""The ``oauth2`` blueprint object, on its own so that its route modules import it without
importing the package that imports them (no import cycle)."""

from flask import Blueprint

bp = Blueprint("oauth2", __name__, url_prefix="/oauth2")
