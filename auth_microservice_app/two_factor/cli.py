"""Operator commands: `flask two-factor ...`."""

from __future__ import annotations

import click

from . import secrets
from .blueprint import bp


@bp.cli.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every TOTP secret with the first key of TOTP_ENCRYPTION_KEYS.

    Put the new key first, keep the old ones, restart, run this; then the old keys may go.
    """
    changed, total = secrets.reencrypt_secrets()
    primary = secrets.encryption_keys().primary
    missing = secrets.secrets_without_a_key()
    if not missing:
        click.echo(f"re-encrypted {changed} of {total} TOTP secrets; all now under key {primary!r}")
        return
    click.echo(f"re-encrypted {changed} of {total} TOTP secrets under key {primary!r}")
    for kid, count in sorted(missing.items()):
        click.echo(f"{count} secret(s) still under key {kid!r}, which is not configured")
    raise click.ClickException(
        "those users cannot pass two-factor: put the keys back in TOTP_ENCRYPTION_KEYS "
        "(after the new one) and run this again"
    )
