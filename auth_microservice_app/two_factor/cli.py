"""Operator commands: `flask two-factor ...`."""

from __future__ import annotations

import click

from . import bp, services


@bp.cli.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every TOTP secret with the first key of TOTP_ENCRYPTION_KEYS.

    Put the new key first, keep the old ones, restart, run this; then the old keys may go.
    """
    changed, total = services.reencrypt_secrets()
    primary = services.encryption_keys().primary
    click.echo(f"re-encrypted {changed} of {total} TOTP secrets; all now under key {primary!r}")
