"""What staging and production refuse to start with, and why (each check names the variable).

Secrets missing or at their development default, template placeholders, public URLs that are
plain http or local, email in clear text or inside the web process without saying so, and
half-configured sign-in providers. Every check raises :class:`ConfigError` with the variable's
name and never its value.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .config_env import FILE_SETTINGS, ConfigError
from .utils.encryption import KeyRingError, parse_key_ring

if TYPE_CHECKING:
    from .config import BaseConfig

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - a marker, refused in production
DEV_TOTP_KEY = "dev-insecure-totp-key-change-me"  # noqa: S105
#: What the repository's templates put where a real value belongs (secret.yaml: CHANGE_ME,
#: CHANGE_ME_USER, CHANGE_ME_PASSWORD, CHANGE_ME_HOST). Matched case-insensitively as a word
#: of its own, so "CHANGE_ME_HOST" is one and "exchange_meter" is not.
PLACEHOLDER = "CHANGE_ME"
PLACEHOLDER_PATTERN = re.compile(rf"(?<![a-z0-9]){PLACEHOLDER}(?![a-z0-9])", re.IGNORECASE)


def validate(config: BaseConfig) -> None:
    """Refuse settings that are unsafe in this environment.

    :raises ConfigError: naming the first offending variable (never its value).
    """
    _validate_required(config)
    _validate_placeholders(config)
    _validate_email(config)
    _validate_two_factor(config)
    _validate_oauth(config)
    if config.ARGON2_QUEUE_TIMEOUT <= 0:
        raise ConfigError("ARGON2_QUEUE_TIMEOUT must be a positive number of seconds")
    if config.ARGON2_MAX_WAITING < 0:
        raise ConfigError("ARGON2_MAX_WAITING must be 0 or more")
    if not 0 <= config.ARGON2_NICE <= 19:
        raise ConfigError("ARGON2_NICE must be between 0 and 19")
    if "*" in config.CORS_ORIGINS:
        raise ConfigError("CORS_ORIGINS must list origins: '*' cannot be combined with credentials")
    if config.JWT_ALGORITHM not in {"RS256", "ES256", "EdDSA"}:
        raise ConfigError("JWT_ALGORITHM must be one of RS256, ES256, EdDSA")
    _validate_public_urls(config)
    _validate_broker(config)


def _validate_required(config: BaseConfig) -> None:
    defaults = {"SECRET_KEY": DEV_SECRET_KEY, "TOTP_ENCRYPTION_KEYS": DEV_TOTP_KEY}
    for name in config.REQUIRED_SETTINGS:
        value = getattr(config, name, None)
        if name == "JWT_PRIVATE_KEY" and config.JWT_KEYS_DIR:
            continue
        if not value:
            source = f"{name} or {name}_FILE" if name in FILE_SETTINGS else name
            raise ConfigError(
                f"{name} must be set in {config.ENV_NAME} (environment variable {source})"
            )
        if defaults.get(name) == value:
            raise ConfigError(f"{name} is left at its development default in {config.ENV_NAME}")


def _validate_placeholders(config: BaseConfig) -> None:
    """Staging/production: no setting may still hold a template's CHANGE_ME."""
    if not config.REQUIRED_SETTINGS:
        return
    for name, value in vars(config).items():
        values = value if isinstance(value, list | tuple) else [value]
        if name.isupper() and any(
            isinstance(item, str) and PLACEHOLDER_PATTERN.search(item) for item in values
        ):
            # the value may be a secret with a real part around the marker: never shown
            raise ConfigError(
                f"{name} still holds the template placeholder {PLACEHOLDER} in "
                f"{config.ENV_NAME}: replace it with the real value"
            )


def _validate_public_urls(config: BaseConfig) -> None:
    """Staging/production: the issuer, the email links and CORS origins are public https."""
    if not config.REQUIRED_SETTINGS or config.ALLOW_INSECURE_URLS:
        return
    urls = [("JWT_ISSUER", config.JWT_ISSUER), ("FRONTEND_URL", config.FRONTEND_URL)]
    count = len(config.CORS_ORIGINS)
    urls += [
        (f"CORS_ORIGINS (entry {index} of {count})", origin)
        for index, origin in enumerate(config.CORS_ORIGINS, start=1)
    ]
    for where, url in urls:
        problem = local_url_problem(url)
        if problem:
            raise ConfigError(
                f"{where} {problem} in {config.ENV_NAME} (ALLOW_INSECURE_URLS=true allows "
                "http:// and localhost URLs, for a local production-like trial only)"
            )


def _validate_broker(config: BaseConfig) -> None:
    """Staging/production: emails go through a broker unless in-process is a decision."""
    if config.REQUIRED_SETTINGS and not (
        config.CELERY_BROKER_URL or config.EMAIL_DELIVERY_IN_PROCESS
    ):
        raise ConfigError(
            f"CELERY_BROKER_URL must be set in {config.ENV_NAME}: without a broker emails "
            "are sent inside the web process; set EMAIL_DELIVERY_IN_PROCESS=true if that "
            "is intended"
        )


def _validate_email(config: BaseConfig) -> None:
    backends = {"console", "file", "smtp", "sendgrid"}
    if config.EMAIL_BACKEND not in backends:
        raise ConfigError(f"EMAIL_BACKEND must be one of {', '.join(sorted(backends))}")
    if config.REQUIRED_SETTINGS and config.EMAIL_BACKEND == "console":
        # the console backend prints link tokens: never in a deployed environment
        raise ConfigError(f"EMAIL_BACKEND=console is for development, not {config.ENV_NAME}")
    if config.EMAIL_BACKEND == "sendgrid" and not config.SENDGRID_API_KEY:
        raise ConfigError("SENDGRID_API_KEY must be set when EMAIL_BACKEND=sendgrid")
    if config.SMTP_SECURITY not in {"starttls", "ssl", "none"}:
        raise ConfigError("SMTP_SECURITY must be starttls, ssl or none")
    if (
        config.REQUIRED_SETTINGS
        and config.EMAIL_BACKEND == "smtp"
        and config.SMTP_SECURITY == "none"
        and not config.SMTP_ALLOW_PLAINTEXT
    ):
        # the password and every link token would cross the network in clear text
        raise ConfigError(
            f"SMTP_SECURITY=none sends mail unencrypted: use starttls or ssl in "
            f"{config.ENV_NAME}, or set SMTP_ALLOW_PLAINTEXT=true if that is intended"
        )


def _validate_two_factor(config: BaseConfig) -> None:
    if "TOTP_ENCRYPTION_KEYS" in config.REQUIRED_SETTINGS:
        try:
            parse_key_ring(config.TOTP_ENCRYPTION_KEYS)
        except KeyRingError as exc:  # the message says what is wrong, never the key
            raise ConfigError(f"TOTP_ENCRYPTION_KEYS {exc} (expected kid:base64key,...)") from None
    if config.SMS_BACKEND not in {"console", "twilio"}:
        raise ConfigError("SMS_BACKEND must be console or twilio")


def _validate_oauth(config: BaseConfig) -> None:
    """Staging/production: a configured provider (client id set) must have its secret."""
    if not config.REQUIRED_SETTINGS:
        return
    needed = {
        "GOOGLE_CLIENT_ID": ("GOOGLE_CLIENT_SECRET",),
        "GITHUB_CLIENT_ID": ("GITHUB_CLIENT_SECRET",),
        "APPLE_CLIENT_ID": ("APPLE_TEAM_ID", "APPLE_KEY_ID", "APPLE_PRIVATE_KEY"),
    }
    configured = [client_id for client_id in needed if getattr(config, client_id)]
    for client_id in configured:
        for name in needed[client_id]:
            if not getattr(config, name):
                raise ConfigError(f"{name} must be set in {config.ENV_NAME} when {client_id} is")
    if configured and not config.OAUTH_CALLBACK_BASE_URL.startswith("https://"):
        raise ConfigError(f"OAUTH_CALLBACK_BASE_URL must be an https URL in {config.ENV_NAME}")


def local_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a public URL of a deployment (plain http, localhost), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() != "https" or not host:
        return "must be an https:// URL"
    if is_local_host(host):
        return "points at localhost"
    return None


def is_local_host(host: str) -> bool:
    """localhost, *.localhost, a loopback address (127.0.0.0/8, ::1) or 0.0.0.0 / ::."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified
