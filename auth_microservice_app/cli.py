"""Operator commands: `flask keys|email|auth|maintenance ...`; `users ...` and `clients ...`
live beside their blueprints (admin/cli.py, oauth2/cli.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from . import hash_calibration
from .admin import users_cli
from .mail import outbox
from .oauth2.cli import clients_cli
from .tasks import maintenance
from .utils.keys import ALGORITHMS, key_files, load_signing_key, write_new_key

keys_cli = AppGroup("keys", help="JWT signing keys.")


def _keys_dir() -> Path:
    configured = current_app.config.get("JWT_KEYS_DIR")
    if configured:
        return Path(configured)
    if current_app.config["APP_ENV"] in {"development", "testing"}:
        return Path(current_app.instance_path) / "jwt-keys"
    raise click.ClickException("Set JWT_KEYS_DIR: rotation keeps several keys in one directory.")


@keys_cli.command("generate")
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    default=None,
    help="The key's algorithm (default: JWT_ALGORITHM).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The keys directory (JWT_KEYS_DIR); created if missing.",
)
def generate_key(algorithm: str | None, out: Path) -> None:
    """Write a new private key (PEM, mode 0600) into --out; it signs from the next start on.

    Needs no existing key: this is how the first one is made. Point JWT_KEYS_DIR at the
    directory (or mount it there), then start the service.
    """
    try:
        path = write_new_key(out, algorithm or current_app.config["JWT_ALGORITHM"])
    except OSError as exc:
        raise click.ClickException(f"cannot write a key into {out}: {exc.strerror}") from exc
    click.echo(f"new signing key {load_signing_key(path.read_bytes()).kid} in {path}")


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


email_cli = AppGroup("email", help="The email outbox.")


@email_cli.command("outbox")
def outbox_status() -> None:
    """Counts by status and the age of the oldest pending message (stuck mail shows here)."""
    stats = outbox.stats()
    for status, count in sorted(stats["counts"].items()):
        click.echo(f"{status:8} {count}")
    click.echo(f"oldest pending: {stats['oldest_pending_seconds']} s")


@email_cli.command("drain")
def drain_outbox() -> None:
    """Deliver pending messages now, from this process (e.g. after a broker outage)."""
    click.echo(f"delivered {outbox.drain()}")


auth_cli = AppGroup("auth", help="Authentication settings.")


@auth_cli.command("calibrate-hash")
@click.option(
    "--target-ms",
    type=click.FloatRange(min=1),
    default=50.0,
    show_default=True,
    help="Longest acceptable median argon2id verification, in milliseconds.",
)
@click.option(
    "--budget-seconds",
    type=click.FloatRange(min=1),
    default=25.0,
    show_default=True,
    help="Stop measuring after this long (costlier settings are skipped).",
)
def calibrate_hash(target_ms: float, budget_seconds: float) -> None:
    """Measure argon2id here and print the strongest parameters within --target-ms.

    Run it on the hardware (and CPU limit) the service runs on; it prints the ARGON2_* lines to
    set. Hashes made with older parameters are upgraded at the users' next login.
    """
    config = current_app.config
    current = hash_calibration.Argon2Params(
        time_cost=config["ARGON2_TIME_COST"],
        memory_cost=config["ARGON2_MEMORY_COST"],
        parallelism=config["ARGON2_PARALLELISM"],
    )
    result = hash_calibration.calibrate(target_ms, budget_seconds=budget_seconds)
    click.echo(hash_calibration.report(result, current=current, concurrent_hashes=_concurrency()))
    if result.chosen is None:
        raise SystemExit(1)


def _concurrency() -> int | None:
    """Requests one pod serves at once (GUNICORN_WORKERS x GUNICORN_THREADS), when set."""
    import os

    try:
        workers = int(os.environ.get("GUNICORN_WORKERS", ""))
        threads = int(os.environ.get("GUNICORN_THREADS", "1") or 1)
    except ValueError:
        return None
    return workers * threads


# Aliases for one release (deprecated): the same commands live in `flask users ...` now.
DEPRECATED = "note: 'auth {old}' is deprecated and goes in the next release; use 'users {new}'."


@auth_cli.command("disable-user")
@click.argument("email")
@click.pass_context
def disable_user(context: click.Context, email: str) -> None:
    """Deprecated alias of `users disable EMAIL` (kept for one release)."""
    click.echo(DEPRECATED.format(old="disable-user", new="disable"), err=True)
    context.invoke(users_cli.get_command(context, "disable"), email=email)  # type: ignore[arg-type]


@auth_cli.command("revoke-sessions")
@click.argument("email")
@click.pass_context
def revoke_sessions(context: click.Context, email: str) -> None:
    """Deprecated alias of `users revoke-sessions EMAIL` (kept for one release)."""
    click.echo(DEPRECATED.format(old="revoke-sessions", new="revoke-sessions"), err=True)
    command = users_cli.get_command(context, "revoke-sessions")
    context.invoke(command, email=email)  # type: ignore[arg-type]


maintenance_cli = AppGroup("maintenance", help="Housekeeping.")


@maintenance_cli.command("purge")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
def purge(as_json: bool) -> None:
    """Remove what has outlived its use now (what the hourly auth.purge_expired task does):
    expired sessions, revoked-token rows and link tokens, OAuth states, expired unverified
    accounts, sent mail a week old, security events past SECURITY_EVENT_RETENTION_DAYS, and
    deleted service clients whose tokens are all dead. Batched (PURGE_BATCH_SIZE rows a commit).
    """
    removed = maintenance.purge()
    if as_json:
        click.echo(json.dumps(removed, sort_keys=True))
        return
    for kind, count in removed.items():
        click.echo(f"{kind:20} {count}")


def register_commands(app: Flask) -> None:
    app.cli.add_command(keys_cli)
    app.cli.add_command(auth_cli)
    app.cli.add_command(email_cli)
    app.cli.add_command(clients_cli)
    app.cli.add_command(maintenance_cli)
    app.cli.add_command(users_cli)
