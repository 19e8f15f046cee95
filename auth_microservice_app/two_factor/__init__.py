"""Two-factor authentication: `/api/v1/2fa` (TOTP, backup codes, the second sign-in step)."""

from flask.blueprints import BlueprintSetupState

from ..identity import reauth
from . import (  # noqa: F401 - routes and commands attach themselves to bp
    cli,
    codes,
    routes,
    secrets,
)
from .blueprint import bp


@bp.record_once
def _load_keys(state: BlueprintSetupState) -> None:
    secrets.init_app(state.app)
    secrets.warn_about_secrets_without_a_key(state.app)
    # the kernel's re-authentication (deleting the account) asks this blueprint for the code
    reauth.register_second_factor(state.app, codes.check_code)
