"""Two-factor authentication: `/api/v1/2fa` (TOTP, backup codes, the second sign-in step)."""

from flask import Blueprint
from flask.blueprints import BlueprintSetupState

bp = Blueprint("two_factor", __name__, url_prefix="/api/v1/2fa", cli_group="two-factor")

from . import cli, routes, services  # noqa: E402,F401 - routes and commands attach themselves to bp


@bp.record_once
def _load_keys(state: BlueprintSetupState) -> None:
    services.init_app(state.app)
    services.warn_about_secrets_without_a_key(state.app)
