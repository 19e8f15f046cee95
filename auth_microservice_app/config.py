"""Configuration, read from the environment (and `.env` in development).

One class per environment, chosen by ``APP_ENV``. Every value has a documented default in
`.env.example`; staging and production refuse to start when a secret is missing or still at
its development default, when a value is still a template placeholder, when a public URL is
plain http or local, and when email would travel in clear text or inside the web process
without saying so (the checks are in :mod:`config_checks`; :class:`ConfigError` names the
variable and never shows a secret). Reading the environment is :mod:`config_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import config_checks
from .config_checks import DEV_SECRET_KEY, DEV_TOTP_KEY
from .config_env import ConfigError, Env


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` means psycopg2, our driver (SQLAlchemy 2.1 would pick psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


class BaseConfig:
    """Settings shared by every environment; subclasses change defaults, never names."""

    ENV_NAME = "base"
    DEBUG = False
    TESTING = False
    #: Secrets that must be set (and not left at a development default) in this environment.
    REQUIRED_SETTINGS: tuple[str, ...] = ()
    DEFAULT_LOG_FORMAT = "json"
    DEFAULT_ARGON2 = (2, 19456, 1)  # OWASP: t=2, m=19 MiB, p=1

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = Env(os.environ if environ is None else environ)
        deployed = bool(self.REQUIRED_SETTINGS)
        self.APP_ENV = self.ENV_NAME
        self.HOST = env.text("HOST", "127.0.0.1")
        self.PORT = env.integer("PORT", 5000)
        self.SECRET_KEY = env.secret("SECRET_KEY") or DEV_SECRET_KEY
        self.LOG_LEVEL = env.text("LOG_LEVEL", "DEBUG" if self.DEBUG else "INFO").upper()
        self.LOG_FORMAT = env.text("LOG_FORMAT", self.DEFAULT_LOG_FORMAT)
        self.MAX_CONTENT_LENGTH = env.integer("MAX_CONTENT_LENGTH", 64 * 1024)
        self.JSON_MAX_DEPTH = env.integer("JSON_MAX_DEPTH", 32)

        # Database
        self.DATABASE_URL = env.optional("DATABASE_URL")
        self.SQLALCHEMY_DATABASE_URI = sqlalchemy_url(self.DATABASE_URL or "sqlite:///auth.db")
        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        self.DB_POOL_SIZE = env.integer("DB_POOL_SIZE", 5)
        self.DB_MAX_OVERFLOW = env.integer("DB_MAX_OVERFLOW", 10)
        self.DB_POOL_RECYCLE = env.integer("DB_POOL_RECYCLE", 1800)
        self.DB_POOL_TIMEOUT = env.integer("DB_POOL_TIMEOUT", 10)
        self.DB_POOL_PRE_PING = env.flag("DB_POOL_PRE_PING", True)
        # A connection used within this many seconds is not pinged again (see database.py).
        self.DB_POOL_PING_AFTER = env.number("DB_POOL_PING_AFTER", 1.0)
        self.DB_CONNECT_TIMEOUT = env.integer("DB_CONNECT_TIMEOUT", 3)
        self.HEALTH_CHECK_TIMEOUT = env.number("HEALTH_CHECK_TIMEOUT", 1.5)

        # Redis and the broker
        self.REDIS_URL = env.optional("REDIS_URL")
        self.REDIS_SOCKET_TIMEOUT = env.number("REDIS_SOCKET_TIMEOUT", 0.5)
        self.REDIS_RETRY_INTERVAL = env.number("REDIS_RETRY_INTERVAL", 2.0)
        self.CELERY_BROKER_URL = env.optional("CELERY_BROKER_URL")
        self.CELERY_RESULT_BACKEND = env.optional("CELERY_RESULT_BACKEND")
        # Staging/production without a broker deliver emails inside the web process only when
        # this says that is intended (development and testing do so silently).
        self.EMAIL_DELIVERY_IN_PROCESS = env.flag("EMAIL_DELIVERY_IN_PROCESS", False)

        # Tokens
        self.JWT_ALGORITHM = env.text("JWT_ALGORITHM", "RS256")
        self.JWT_PRIVATE_KEY = env.secret("JWT_PRIVATE_KEY")
        self.JWT_KEYS_DIR = env.optional("JWT_KEYS_DIR")
        self.JWT_ISSUER = env.text("JWT_ISSUER", f"http://{self.HOST}:{self.PORT}")
        self.JWT_AUDIENCE = env.text("JWT_AUDIENCE", "auth-service")
        self.JWT_ACCESS_TOKEN_EXPIRES = env.integer("JWT_ACCESS_TOKEN_EXPIRES", 15 * 60)
        self.JWT_REFRESH_TOKEN_EXPIRES = env.integer("JWT_REFRESH_TOKEN_EXPIRES", 30 * 24 * 3600)
        self.JWT_LEEWAY = env.integer("JWT_LEEWAY", 0)
        self.SESSION_MAX_AGE = env.integer("SESSION_MAX_AGE", 90 * 24 * 3600)
        # open sessions per user; a sign-in beyond it revokes the least recently used (0: no cap)
        self.SESSION_MAX_PER_USER = env.integer("SESSION_MAX_PER_USER", 100)
        self.REFRESH_REUSE_GRACE_SECONDS = env.integer("REFRESH_REUSE_GRACE_SECONDS", 0)
        # roles whose users get no session without a second factor: sign-in answers only an
        # enrollment token (e.g. "admin"; empty: no such policy)
        self.REQUIRE_2FA_FOR_ROLES = env.items("REQUIRE_2FA_FOR_ROLES")

        # Service clients (OAuth 2.0 client credentials, introspection)
        # the client_id claim of users' access tokens (RFC 9068): this service's own clients
        self.FIRST_PARTY_CLIENT_ID = env.text("FIRST_PARTY_CLIENT_ID", "first-party")
        self.SERVICE_TOKEN_EXPIRES = env.integer("SERVICE_TOKEN_EXPIRES", 15 * 60)
        # seconds the previous secret keeps working after `clients rotate-secret` (0: none)
        self.CLIENT_SECRET_ROTATION_OVERLAP = env.integer("CLIENT_SECRET_ROTATION_OVERLAP", 86400)
        # seconds a process keeps a client's record (a disabled client calls for so long)
        self.SERVICE_CLIENT_CACHE_SECONDS = env.number("SERVICE_CLIENT_CACHE_SECONDS", 5.0)

        # Passwords
        t, m, p = self.DEFAULT_ARGON2
        self.ARGON2_TIME_COST = env.integer("ARGON2_TIME_COST", t)
        self.ARGON2_MEMORY_COST = env.integer("ARGON2_MEMORY_COST", m)
        self.ARGON2_PARALLELISM = env.integer("ARGON2_PARALLELISM", p)
        # Hashes one worker process computes at once (0: no limit); see identity/hashing.py.
        self.ARGON2_MAX_CONCURRENT = env.integer("ARGON2_MAX_CONCURRENT", 1)
        # Seconds a request waits for a hash thread to start its hash; then 503 + Retry-After.
        self.ARGON2_QUEUE_TIMEOUT = env.number("ARGON2_QUEUE_TIMEOUT", 1.0)
        # Requests per process that may wait for a hash thread; one more is refused at once
        # (503). Keep ARGON2_MAX_CONCURRENT + this below GUNICORN_THREADS (4).
        self.ARGON2_MAX_WAITING = env.integer("ARGON2_MAX_WAITING", 2)
        # Nice value of the hash threads (0-19): token checks get the CPU first.
        self.ARGON2_NICE = env.integer("ARGON2_NICE", 19)
        self.PASSWORD_MIN_LENGTH = env.integer("PASSWORD_MIN_LENGTH", 8)
        self.PASSWORD_MAX_LENGTH = env.integer("PASSWORD_MAX_LENGTH", 128)
        self.PASSWORD_BREACH_CHECK_URL = env.optional("PASSWORD_BREACH_CHECK_URL")
        self.PASSWORD_BREACH_CHECK_TIMEOUT = env.number("PASSWORD_BREACH_CHECK_TIMEOUT", 1.5)
        self.REQUIRE_EMAIL_VERIFICATION = env.flag("REQUIRE_EMAIL_VERIFICATION", deployed)
        # Administration: a change needs a token whose amr holds a second factor (otp, mfa).
        self.ADMIN_REQUIRE_2FA = env.flag("ADMIN_REQUIRE_2FA", deployed)

        # Web
        self.FRONTEND_URL = env.text("FRONTEND_URL", "http://localhost:3000")
        self.CORS_ORIGINS = env.items("CORS_ORIGINS", "http://localhost:3000")
        self.CORS_MAX_AGE = env.integer("CORS_MAX_AGE", 600)
        # Lets staging/production run with http:// or localhost URLs: local trials only.
        self.ALLOW_INSECURE_URLS = env.flag("ALLOW_INSECURE_URLS", False)
        secure = self.ENV_NAME in {"staging", "production"}
        self.FORCE_HTTPS = env.flag("FORCE_HTTPS", secure)
        self.HSTS_ENABLED = env.flag("HSTS_ENABLED", secure)
        self.HSTS_MAX_AGE = env.integer("HSTS_MAX_AGE", 31536000)
        self.TRUSTED_PROXIES = env.integer("TRUSTED_PROXIES", 0)
        self.METRICS_TOKEN = env.secret("METRICS_TOKEN")
        # Email
        self.EMAIL_BACKEND = env.text("EMAIL_BACKEND", "console")
        self.EMAIL_FROM = env.text("EMAIL_FROM", "no-reply@localhost")
        self.PRODUCT_NAME = env.text("PRODUCT_NAME", "Auth Service")
        self.SUPPORT_EMAIL = env.text("SUPPORT_EMAIL", "support@localhost")
        self.EMAIL_FILE_DIR = env.text("EMAIL_FILE_DIR", "instance/emails")
        self.EMAIL_TIMEOUT = env.number("EMAIL_TIMEOUT", 10.0)
        self.EMAIL_MAX_ATTEMPTS = env.integer("EMAIL_MAX_ATTEMPTS", 8)
        self.SMTP_HOST = env.text("SMTP_HOST", "localhost")
        self.SMTP_PORT = env.integer("SMTP_PORT", 587)
        self.SMTP_SECURITY = env.text("SMTP_SECURITY", "starttls")  # starttls | ssl | none
        # Lets staging/production send through SMTP without TLS (SMTP_SECURITY=none).
        self.SMTP_ALLOW_PLAINTEXT = env.flag("SMTP_ALLOW_PLAINTEXT", False)
        self.SMTP_USERNAME = env.optional("SMTP_USERNAME")
        self.SMTP_PASSWORD = env.secret("SMTP_PASSWORD")
        self.SENDGRID_API_KEY = env.secret("SENDGRID_API_KEY")
        self.SENDGRID_API_HOST = env.text("SENDGRID_API_HOST", "https://api.sendgrid.com")
        self.EMAIL_VERIFICATION_TOKEN_TTL = env.integer("EMAIL_VERIFICATION_TOKEN_TTL", 48 * 3600)
        # An account nobody has proven the address of expires (0: never); see identity/ownership.py
        self.UNVERIFIED_ACCOUNT_TTL = env.integer(
            "UNVERIFIED_ACCOUNT_TTL", self.EMAIL_VERIFICATION_TOKEN_TTL
        )
        self.PASSWORD_RESET_TOKEN_TTL = env.integer("PASSWORD_RESET_TOKEN_TTL", 3600)
        self.MAGIC_LINK_TOKEN_TTL = env.integer("MAGIC_LINK_TOKEN_TTL", 15 * 60)
        # the link that confirms a new address (POST /me/email)
        self.EMAIL_CHANGE_TOKEN_TTL = env.integer("EMAIL_CHANGE_TOKEN_TTL", 24 * 3600)
        self.CELERY_BROKER_TIMEOUT = env.number("CELERY_BROKER_TIMEOUT", 1.0)
        self.CELERY_DEFAULT_QUEUE = env.text("CELERY_DEFAULT_QUEUE", "auth")
        #: pending outbox rows older than this are re-sent by the periodic drain
        self.EMAIL_OUTBOX_DRAIN_AGE = env.integer("EMAIL_OUTBOX_DRAIN_AGE", 30)
        # Rate limits (Flask-Limiter strings) and the per-account brute-force throttle
        self.RATELIMIT_ENABLED = env.flag("RATELIMIT_ENABLED", not self.TESTING)
        self.RATELIMIT_DEFAULT = env.text("RATELIMIT_DEFAULT", "300/minute")
        self.RATELIMIT_LOGIN = env.text("RATELIMIT_LOGIN", "10/minute")
        self.RATELIMIT_REGISTER = env.text("RATELIMIT_REGISTER", "20/hour")
        self.RATELIMIT_REFRESH = env.text("RATELIMIT_REFRESH", "60/minute")
        self.RATELIMIT_EMAIL = env.text("RATELIMIT_EMAIL", "5/hour")
        self.RATELIMIT_2FA = env.text("RATELIMIT_2FA", "10/minute")
        # every request of one client (an IP; an IPv6 /64) together, whatever the endpoint
        self.RATELIMIT_PER_CLIENT = env.text("RATELIMIT_PER_CLIENT", "600/minute")
        # counters the in-memory fallback keeps at most while Redis is down
        self.RATELIMIT_FALLBACK_MAX_KEYS = env.integer("RATELIMIT_FALLBACK_MAX_KEYS", 10_000)
        # refused logins, rate limits...: stored and logged once per window per account or IP
        self.EVENT_SAMPLE_WINDOW = env.integer("EVENT_SAMPLE_WINDOW", 60)
        # security events older than this many days are purged (0: kept for ever)
        self.SECURITY_EVENT_RETENTION_DAYS = env.integer("SECURITY_EVENT_RETENTION_DAYS", 365)
        # rows the retention purge deletes per statement (and commit): short locks, short WAL
        self.PURGE_BATCH_SIZE = env.integer("PURGE_BATCH_SIZE", 1000)
        # GET /apispec.json per IP (the OpenAPI document, ETag and max-age=300 for the rest)
        self.RATELIMIT_APISPEC = env.text("RATELIMIT_APISPEC", "60/minute")
        # per service client (the /oauth2 endpoints are not limited per IP, except failures)
        self.RATELIMIT_OAUTH2_TOKEN = env.text("RATELIMIT_OAUTH2_TOKEN", "60/minute")
        self.RATELIMIT_OAUTH2_INTROSPECT = env.text("RATELIMIT_OAUTH2_INTROSPECT", "12000/minute")
        self.LOGIN_THROTTLE_ENABLED = env.flag("LOGIN_THROTTLE_ENABLED", True)
        self.LOGIN_THROTTLE_THRESHOLD = env.integer("LOGIN_THROTTLE_THRESHOLD", 5)
        self.LOGIN_THROTTLE_BASE_SECONDS = env.integer("LOGIN_THROTTLE_BASE_SECONDS", 1)
        self.LOGIN_THROTTLE_MAX_SECONDS = env.integer("LOGIN_THROTTLE_MAX_SECONDS", 300)
        self.LOGIN_FAILURE_WINDOW = env.integer("LOGIN_FAILURE_WINDOW", 900)
        # Dummy argon2 verifications per minute, service-wide, for sign-ins to addresses without
        # a password (0: no budget); per process while Redis is down. See identity/login_budget.py.
        self.LOGIN_UNKNOWN_BUDGET = env.integer("LOGIN_UNKNOWN_BUDGET", 300)
        self.LOGIN_UNKNOWN_BUDGET_LOCAL = env.integer("LOGIN_UNKNOWN_BUDGET_LOCAL", 100)
        self.TOTP_ENCRYPTION_KEYS = env.secret("TOTP_ENCRYPTION_KEYS") or DEV_TOTP_KEY
        # Two-factor and SMS
        self.TOTP_ISSUER = env.text("TOTP_ISSUER", "Auth Service")
        self.MFA_TOKEN_TTL = env.integer("MFA_TOKEN_TTL", 300)
        self.SMS_BACKEND = env.text("SMS_BACKEND", "console")
        self.SMS_TIMEOUT = env.number("SMS_TIMEOUT", 5.0)
        self.TWILIO_ACCOUNT_SID = env.optional("TWILIO_ACCOUNT_SID")
        self.TWILIO_AUTH_TOKEN = env.secret("TWILIO_AUTH_TOKEN")
        self.TWILIO_FROM_NUMBER = env.optional("TWILIO_FROM_NUMBER")
        self.TWILIO_API_URL = env.text("TWILIO_API_URL", "https://api.twilio.com")
        # OAuth sign-in (a provider whose client id is not set is not configured)
        self.OAUTH_REDIRECT_ALLOWLIST = env.items("OAUTH_REDIRECT_ALLOWLIST")
        self.OAUTH_CALLBACK_BASE_URL = env.text(
            "OAUTH_CALLBACK_BASE_URL", f"http://{self.HOST}:{self.PORT}"
        )
        self.OAUTH_STATE_TTL = env.integer("OAUTH_STATE_TTL", 600)
        self.OAUTH_CODE_TTL = env.integer("OAUTH_CODE_TTL", 60)
        # OAuth flows one IP may start (/authorize, /link); each is kept for OAUTH_STATE_TTL
        self.RATELIMIT_OAUTH_AUTHORIZE = env.text("RATELIMIT_OAUTH_AUTHORIZE", "20/minute")
        self.OAUTH_HTTP_TIMEOUT = env.number("OAUTH_HTTP_TIMEOUT", 5.0)
        self.OAUTH_METADATA_CACHE_TTL = env.integer("OAUTH_METADATA_CACHE_TTL", 3600)
        self.OAUTH_CLOCK_SKEW = env.integer("OAUTH_CLOCK_SKEW", 60)
        self.GOOGLE_CLIENT_ID = env.optional("GOOGLE_CLIENT_ID")
        self.GOOGLE_CLIENT_SECRET = env.secret("GOOGLE_CLIENT_SECRET")
        self.GOOGLE_DISCOVERY_URL = env.text(
            "GOOGLE_DISCOVERY_URL", "https://accounts.google.com/.well-known/openid-configuration"
        )
        self.GOOGLE_EXTRA_AUDIENCES = env.items("GOOGLE_EXTRA_AUDIENCES")
        self.GITHUB_CLIENT_ID = env.optional("GITHUB_CLIENT_ID")
        self.GITHUB_CLIENT_SECRET = env.secret("GITHUB_CLIENT_SECRET")
        self.GITHUB_AUTHORIZE_URL = env.text(
            "GITHUB_AUTHORIZE_URL", "https://github.com/login/oauth/authorize"
        )
        self.GITHUB_TOKEN_URL = env.text(
            "GITHUB_TOKEN_URL", "https://github.com/login/oauth/access_token"
        )
        self.GITHUB_API_URL = env.text("GITHUB_API_URL", "https://api.github.com")
        self.APPLE_CLIENT_ID = env.optional("APPLE_CLIENT_ID")
        self.APPLE_TEAM_ID = env.optional("APPLE_TEAM_ID")
        self.APPLE_KEY_ID = env.optional("APPLE_KEY_ID")
        self.APPLE_PRIVATE_KEY = env.secret("APPLE_PRIVATE_KEY")
        self.APPLE_DISCOVERY_URL = env.text(
            "APPLE_DISCOVERY_URL", "https://appleid.apple.com/.well-known/openid-configuration"
        )
        self.APPLE_EXTRA_AUDIENCES = env.items("APPLE_EXTRA_AUDIENCES")

    def engine_options(self) -> dict[str, Any]:
        """SQLAlchemy engine options: pooling and connect timeout for PostgreSQL."""
        if not self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            return {}
        return {
            "pool_size": self.DB_POOL_SIZE,
            "max_overflow": self.DB_MAX_OVERFLOW,
            "pool_recycle": self.DB_POOL_RECYCLE,
            "pool_timeout": self.DB_POOL_TIMEOUT,
            # DB_POOL_PRE_PING is done by database.ping_idle_connections, only for idle ones
            "pool_pre_ping": False,
            "connect_args": {"connect_timeout": self.DB_CONNECT_TIMEOUT},
        }

    def validate(self) -> None:
        """Refuse settings that are unsafe in this environment (see :mod:`config_checks`).

        :raises ConfigError: naming the first offending variable (never its value).
        """
        config_checks.validate(self)


class DevelopmentConfig(BaseConfig):
    ENV_NAME = "development"
    DEBUG = True
    DEFAULT_LOG_FORMAT = "text"


class TestingConfig(BaseConfig):
    ENV_NAME = "testing"
    TESTING = True
    DEFAULT_LOG_FORMAT = "json"
    # Cheap hashing keeps the suite fast; production parameters are exercised by `make bench`.
    DEFAULT_ARGON2 = (1, 1024, 1)


class StagingConfig(BaseConfig):
    ENV_NAME = "staging"
    REQUIRED_SETTINGS = (
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "JWT_PRIVATE_KEY",
        "TOTP_ENCRYPTION_KEYS",
        "METRICS_TOKEN",
    )


class ProductionConfig(StagingConfig):
    ENV_NAME = "production"


CONFIGS: dict[str, type[BaseConfig]] = {
    cls.ENV_NAME: cls for cls in (DevelopmentConfig, TestingConfig, StagingConfig, ProductionConfig)
}


def load_config(name: str | None = None, environ: Mapping[str, str] | None = None) -> BaseConfig:
    """Build the configuration for ``name`` (default: ``APP_ENV``, else development).

    :raises ConfigError: for an unknown environment name or an unusable value.
    """
    source = os.environ if environ is None else environ
    env_name = (name or source.get("APP_ENV") or "development").strip().lower()
    try:
        cls = CONFIGS[env_name]
    except KeyError:
        raise ConfigError(
            f"APP_ENV must be one of {', '.join(CONFIGS)}, got {env_name!r}"
        ) from None
    return cls(source)
