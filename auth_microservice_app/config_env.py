"""Reading settings from the environment: typed reads, secrets from files, the one error type."""

from __future__ import annotations

from collections.abc import Mapping

import click

#: Settings read through :meth:`Env.secret`, which may also come from ``NAME_FILE``.
FILE_SETTINGS = frozenset(
    {"SECRET_KEY", "JWT_PRIVATE_KEY", "TOTP_ENCRYPTION_KEYS", "METRICS_TOKEN"}
)


class ConfigError(click.ClickException):
    """The configuration cannot be used: the message names the variable.

    A :class:`click.ClickException`, so that a ``flask ...`` command whose app cannot start
    prints this one line (``Error: ...``) and exits 1, never a traceback.
    """


class Env:
    """Typed reads of environment variables with defaults."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str = "") -> str:
        value = self._environ.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    def optional(self, name: str) -> str | None:
        value = self.text(name)
        return value or None

    def integer(self, name: str, default: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc

    def number(self, name: str, default: float) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            return float(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from exc

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def items(self, name: str, default: str = "") -> list[str]:
        return [item.strip() for item in self.text(name, default).split(",") if item.strip()]

    def secret(self, name: str) -> str | None:
        """A secret inline (``NAME``) or as a file path (``NAME_FILE``, for mounted secrets)."""
        inline = self.optional(name)
        if inline:
            return inline.replace("\\n", "\n")
        path = self.optional(f"{name}_FILE")
        if path:
            try:
                with open(path, encoding="utf-8") as handle:
                    return handle.read()
            except OSError as exc:
                raise ConfigError(f"{name}_FILE points at an unreadable file: {path}") from exc
        return None
