"""`flask users ...`: the same administration from a shell, errors as one line."""

from __future__ import annotations

import json

import pytest

from auth_microservice_app.mail.outbox import LOCAL_DELIVERY
from tests.conftest import PASSWORD
from tests.integration.admin.conftest import assert_error, enable_two_factor

pytestmark = pytest.mark.integration


def run(app, *args: str, stdin: str | None = None):
    return app.test_cli_runner().invoke(args=list(args), input=stdin)


def test_create_an_admin_who_can_sign_in_and_administer(app, client, auth):
    result = run(
        app,
        "users",
        "create",
        "Root@Example.com",
        "--admin",
        "--password-stdin",
        "--json",
        stdin=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["roles"] == ["user", "admin"] and created["email_verified"] is True
    tokens = auth.login("Root@Example.com")
    assert (
        client.get("/api/v1/admin/users", headers=auth.bearer(tokens["access_token"])).status_code
        == 200
    )
    again = run(app, "users", "create", "root@example.com")
    assert again.exit_code == 1
    assert again.output.startswith("Error: ") and "Traceback" not in again.output


def test_create_refuses_a_weak_password_in_one_line(app):
    result = run(app, "users", "create", "a@x.io", "--password-stdin", stdin="123\n")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")


def test_list_prints_parseable_json_and_searches(app, auth):
    for email in ("alice@x.io", "bob@x.io"):
        auth.register(email)
    LOCAL_DELIVERY.join()  # its thread logs to this process's stdout, which the runner captures
    result = run(app, "users", "list", "--json")
    assert [row["email"] for row in json.loads(result.stdout)] == ["alice@x.io", "bob@x.io"]
    found = run(app, "users", "list", "--query", "BO", "--json")
    assert [row["email"] for row in json.loads(found.stdout)] == ["bob@x.io"]
    assert "bob@x.io" in run(app, "users", "list").output


def test_set_roles_disable_enable_and_revoke(app, client, auth):
    tokens = auth.signup_and_login("alice@x.io")
    result = run(app, "users", "set-roles", "alice@x.io", "user", "support")
    assert result.exit_code == 0, result.output
    assert "roles: user support; 0 session(s) revoked" in result.output
    result = run(app, "users", "set-roles", "alice@x.io", "user")
    assert "1 session(s) revoked" in result.output
    me = client.get("/api/v1/auth/me", headers=auth.bearer(tokens["access_token"]))
    assert_error(me, 401, "token_revoked")
    assert run(app, "users", "set-roles", "alice@x.io", "Bad Role").exit_code == 1
    auth.login("alice@x.io")
    assert "1 session(s) revoked" in run(app, "users", "disable", "alice@x.io").output
    assert "enabled" in run(app, "users", "enable", "alice@x.io").output
    auth.login("alice@x.io")
    assert "1 session(s) revoked" in run(app, "users", "revoke-sessions", "alice@x.io").output
    unknown = run(app, "users", "disable", "ghost@x.io")
    assert unknown.exit_code == 1 and unknown.output == "Error: No account has this email.\n"


def test_reset_2fa(app, client, auth):
    tokens = auth.signup_and_login("alice@x.io", verified=True)
    enable_two_factor(client, tokens["access_token"])
    result = run(app, "users", "reset-2fa", "alice@x.io")
    assert result.exit_code == 0, result.output
    assert "access_token" in auth.login("alice@x.io")
    assert run(app, "users", "reset-2fa", "alice@x.io").exit_code == 1


def test_the_old_auth_commands_still_work_and_say_they_are_deprecated(app, auth):
    auth.signup_and_login("alice@x.io")
    result = run(app, "auth", "revoke-sessions", "alice@x.io")
    assert "1 session(s) revoked" in result.stdout
    assert "deprecated" in result.stderr and "users revoke-sessions" in result.stderr


def test_the_readmes_first_admin_command_works_as_typed(app, auth, signing_key_pem, tmp_path):
    """README, "Administering users": the shell line that makes the first admin, run by bash."""
    import re
    import subprocess

    from tests.running_server import ROOT, free_port, service_environment

    section = (ROOT / "README.md").read_text().split("## Administering users", 1)[1]
    command = re.search(r"`(printf [^`]*users create[^`]*)`", section)
    assert command, "the README shows how to make the first admin"
    env = service_environment(free_port(), tmp_path, signing_key_pem, PASSWORD=PASSWORD)
    done = subprocess.run(  # noqa: S603 - the README's own command
        ["bash", "-c", command.group(1).replace("you@example.com", "first@example.com")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    tokens = auth.login("first@example.com")
    assert (
        auth.client.get(
            "/api/v1/admin/users", headers=auth.bearer(tokens["access_token"])
        ).status_code
        == 200
    )
