"""`flask ... users ...`: the administration of `/api/v1/admin` from a shell.

Each command names the account by email and calls the same kernel functions as the API; the
security events they record carry ``actor_id: null, via: "cli"``. Errors are one
``Error: ...`` line and exit status 1; ``--json`` prints JSON only on stdout (logs go to stderr).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask.cli import AppGroup

from ..errors import AppError
from ..identity import accounts, directory
from ..models import User

users_cli = AppGroup("users", help="User accounts: create, list, roles, disable, 2FA reset.")
T = TypeVar("T")
LIST_LIMIT = 200


def _run(action: Callable[[], T]) -> T:
    """``action``, with our errors as one ``Error: ...`` line and exit status 1."""
    try:
        return action()
    except AppError as exc:
        detail = "; ".join(
            message
            for messages in exc.details.values()
            for message in (messages if isinstance(messages, list) else [messages])
        )
        raise click.ClickException(f"{exc.message} {detail}".strip()) from exc


def _row(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "name": user.name,
        "roles": list(user.roles),
        "disabled": user.disabled,
        "email_verified": user.email_verified,
        "two_factor_enabled": user.two_factor_enabled,
    }


@users_cli.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Give the account the admin role too.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (first line); else the account has none and "
    "signs in by magic link or sets one with 'forgot password'.",
)
@click.option("--name", default=None, help="The display name.")
@click.option("--json", "as_json", is_flag=True, help="Print the account as JSON.")
def create(email: str, admin: bool, password_stdin: bool, name: str | None, as_json: bool) -> None:
    """Create an account whose email counts as verified (you vouch for it)."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    if password_stdin and not password:
        raise click.ClickException("no password on standard input")
    user = _run(lambda: accounts.create_user(email, password=password, admin=admin, name=name))
    if as_json:
        click.echo(json.dumps(_row(user)))
    else:
        click.echo(f"created {user.email} ({user.id}) roles: {' '.join(user.roles)}")


@users_cli.command("list")
@click.option("--query", default=None, help="A case-insensitive prefix of the email or name.")
@click.option("--role", default=None, help="Only users holding this role.")
@click.option("--status", type=click.Choice(directory.STATUSES), default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=LIST_LIMIT, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def list_(
    query: str | None, role: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """Users in email order (at most --limit)."""
    users: list[User] = []
    after: directory.UserKey | None = None

    def next_page() -> directory.UserPage:
        size = min(LIST_LIMIT, limit - len(users))
        return directory.list_users(limit=size, after=after, query=query, role=role, status=status)

    while len(users) < limit:
        page = _run(next_page)
        users.extend(page.users)
        after = page.next_cursor
        if after is None:
            break
    rows = [_row(user) for user in users]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        state = "disabled" if row["disabled"] else "active"
        click.echo(f"{row['id']}  {state:8}  {row['email']}  [{' '.join(row['roles'])}]")


@users_cli.command("set-roles")
@click.argument("email")
@click.argument("roles", nargs=-1, required=True)
def set_roles(email: str, roles: tuple[str, ...]) -> None:
    """Replace the account's roles (a role it loses ends every session of it at once)."""
    result = _run(
        lambda: accounts.update_user(None, accounts.user_id_for(email), {"roles": list(roles)})
    )
    click.echo(
        f"roles: {' '.join(result.user.roles)}; {result.sessions_revoked} session(s) revoked"
    )


@users_cli.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Disable an account and revoke all its sessions and tokens at once."""
    click.echo(f"disabled; {_run(lambda: accounts.disable_user(email))} session(s) revoked")


@users_cli.command("enable")
@click.argument("email")
def enable(email: str) -> None:
    """Let a disabled account sign in again."""
    _run(lambda: accounts.update_user(None, accounts.user_id_for(email), {"disabled": False}))
    click.echo("enabled")


@users_cli.command("delete")
@click.argument("email")
def delete(email: str) -> None:
    """Delete an account and its personal data, revoke every token, mail a notice."""
    _run(lambda: accounts.delete_user(None, accounts.user_id_for(email)))
    click.echo("deleted; every session and token revoked")


@users_cli.command("revoke-sessions")
@click.argument("email")
def revoke_sessions(email: str) -> None:
    """Sign an account out everywhere (every session and its tokens)."""
    click.echo(f"{_run(lambda: accounts.revoke_user_sessions(email))} session(s) revoked")


@users_cli.command("reset-2fa")
@click.argument("email")
def reset_two_factor(email: str) -> None:
    """Remove the account's second factor and backup codes, sign it out, and mail the user."""
    count = _run(lambda: accounts.reset_two_factor(None, accounts.user_id_for(email)))
    click.echo(f"two-factor authentication removed; {count} session(s) revoked")
