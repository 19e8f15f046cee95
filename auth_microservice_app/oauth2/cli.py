"""`flask ... clients ...`: the service clients of `/oauth2` (create, list, rotate, delete)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask.cli import AppGroup

from ..errors import AppError
from ..identity import clients

clients_cli = AppGroup("clients", help="Service clients (OAuth 2.0 client credentials).")
T = TypeVar("T")


def _run(action: Callable[[], T]) -> T:
    """``action``, with our errors as one ``Error: ...`` line and exit status 1."""
    try:
        return action()
    except AppError as exc:
        raise click.ClickException(exc.message) from exc


def _when(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


@clients_cli.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, help="A scope the client may ask for (repeat).")
@click.option("--json", "as_json", is_flag=True, help='Print {"client_id", "client_secret"}.')
def create(name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create a client; its secret is printed this once (only a hash is kept)."""
    client, secret = _run(lambda: clients.create_client(name, scopes))
    if as_json:
        click.echo(json.dumps({"client_id": client.client_id, "client_secret": secret}))
        return
    click.echo(f"client_id:     {client.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown once: store it now.", err=True)


@clients_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def list_(as_json: bool) -> None:
    """Every client (never a secret)."""
    rows: list[dict[str, Any]] = [
        {
            "client_id": client.client_id,
            "name": client.name,
            "scopes": client.scopes,
            "created_at": _when(client.created_at),
            "rotated_at": _when(client.rotated_at),
            "last_used_at": _when(client.last_used_at),
            "disabled": client.disabled_at is not None,
        }
        for client in clients.list_clients()
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        state = "disabled" if row["disabled"] else "active"
        scopes = " ".join(row["scopes"]) or "-"
        click.echo(f"{row['client_id']}  {state:8}  {row['name']}  [{scopes}]")


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help='Print {"client_id", "client_secret"}.')
def rotate_secret(client_id: str, as_json: bool) -> None:
    """A new secret; the old one works for CLIENT_SECRET_ROTATION_OVERLAP seconds more."""
    secret = _run(lambda: clients.rotate_secret(client_id))
    if as_json:
        click.echo(json.dumps({"client_id": client_id, "client_secret": secret}))
    else:
        click.echo(f"client_secret: {secret}")


@clients_cli.command("disable")
@click.argument("client_id")
def disable(client_id: str) -> None:
    """Refuse the client, and revoke every token it holds at once."""
    _run(lambda: clients.set_disabled(client_id, True))
    click.echo("disabled; its tokens are revoked")


@clients_cli.command("enable")
@click.argument("client_id")
def enable(client_id: str) -> None:
    """Accept a disabled client again (the tokens it held stay revoked)."""
    _run(lambda: clients.set_disabled(client_id, False))
    click.echo("enabled")


@clients_cli.command("delete")
@click.argument("client_id")
def delete(client_id: str) -> None:
    """Delete a client and revoke every token it holds at once."""
    _run(lambda: clients.delete_client(client_id))
    click.echo("deleted; its tokens are revoked")
