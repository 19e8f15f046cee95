"""Operator commands: `flask keys ...`."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .utils.keys import key_files, load_signing_key, write_new_key

keys_cli = AppGroup("keys", help="JWT signing keys.")


def _keys_dir() -> Path:
    configured = current_app.config.get("JWT_KEYS_DIR")
    if configured:
        return Path(configured)
    if current_app.config["APP_ENV"] in {"development", "testing"}:
        return Path(current_app.instance_path) / "jwt-keys"
    raise click.ClickException("Set JWT_KEYS_DIR: rotation keeps several keys in one directory.")


@keys_cli.command("rotate")
def rotate_keys() -> None:
    """Add a new signing key; older keys keep verifying until their tokens expire.

    Running processes sign with the new key after their next (rolling) restart; the JWKS of
    every process restarted lists both keys.
    """
    path = write_new_key(_keys_dir(), current_app.config["JWT_ALGORITHM"])
    click.echo(f"new signing key {load_signing_key(path.read_bytes()).kid} in {path}")


@keys_cli.command("list")
def list_keys() -> None:
    """Show each key's kid and algorithm; the last one signs."""
    for path in key_files(_keys_dir()):
        key = load_signing_key(path.read_bytes())
        click.echo(f"{key.kid}  {key.algorithm}  {path.name}")


@keys_cli.command("prune")
@click.option("--yes", is_flag=True, help="Delete instead of only listing.")
def prune_keys(yes: bool) -> None:
    """Remove retired keys whose tokens have all expired (retired over a refresh lifetime ago)."""
    files = key_files(_keys_dir())
    horizon = time.time() - current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]
    # A key retired when its successor was written; keep the signer and anything still in use.
    for retired, successor in zip(files, files[1:], strict=False):
        if successor.stat().st_mtime < horizon:
            click.echo(f"{'removing' if yes else 'would remove'} {retired.name}")
            if yes:
                retired.unlink()


def register_commands(app: Flask) -> None:
    app.cli.add_command(keys_cli)
