"""The first signing key, made the documented way, and CLI errors that are one line (issue 16).

Each test runs the real `flask` command in a subprocess with a production environment, as an
operator would type it.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from auth_microservice_app import create_app
from auth_microservice_app.utils.keys import KeyError_, key_files
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL

pytestmark = pytest.mark.integration
FLASK = [sys.executable, "-m", "flask", "--app", "auth_microservice_app.app"]


def production_env(keys_dir: Path) -> dict[str, str]:
    return {
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL,
        "CELERY_BROKER_URL": TEST_REDIS_URL,
        "JWT_KEYS_DIR": str(keys_dir),
        "TOTP_ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "METRICS_TOKEN": secrets.token_hex(16),
        "EMAIL_BACKEND": "file",
        "JWT_ISSUER": "https://auth.example.com",
        "FRONTEND_URL": "https://app.example.com",
        "CORS_ORIGINS": "https://app.example.com",
    }


def flask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "JWT_", "FLASK_"))}
    return subprocess.run(  # noqa: S603 - a fixed command
        [*FLASK, *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_keys_generate_makes_the_first_key_and_production_starts_with_it(tmp_path, monkeypatch):
    keys_dir = tmp_path / "jwt-keys"  # does not exist yet
    env = production_env(keys_dir)

    made = flask("keys", "generate", "--out", str(keys_dir), env=env)

    assert made.returncode == 0, made.stderr
    [key] = key_files(keys_dir)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"in {key}" in made.stdout
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app()  # a server start: the key is there now
    with app.app_context():
        from auth_microservice_app.identity.tokens import key_ring

        assert key_ring().signing.kid in made.stdout


def test_a_server_without_a_key_refuses_to_start_and_says_how_to_make_one(tmp_path, monkeypatch):
    empty = tmp_path / "keys"
    empty.mkdir()
    for name, value in production_env(empty).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(KeyError_, match="keys generate --out"):
        create_app()


def test_keys_generate_takes_the_algorithm(tmp_path):
    keys_dir = tmp_path / "keys"
    made = flask(
        "keys", "generate", "--algorithm", "EdDSA", "--out", str(keys_dir),
        env={**production_env(keys_dir), "JWT_ALGORITHM": "EdDSA"},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = flask("keys", "list", env={**production_env(keys_dir), "JWT_ALGORITHM": "EdDSA"})
    assert "EdDSA" in listed.stdout


def test_a_cli_command_with_a_bad_configuration_prints_one_line(tmp_path):
    env = production_env(tmp_path)
    env["METRICS_TOKEN"] = ""
    result = flask("keys", "list", env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: METRICS_TOKEN"), result.stderr
