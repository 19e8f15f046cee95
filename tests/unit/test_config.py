from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from auth_microservice_app import config as config_module
from auth_microservice_app.config import (
    DEV_SECRET_KEY,
    ConfigError,
    DevelopmentConfig,
    ProductionConfig,
    StagingConfig,
    load_config,
)
from auth_microservice_app.config_checks import PLACEHOLDER

PRODUCTION_ENV = {
    "APP_ENV": "production",
    "SECRET_KEY": "s" * 48,
    "DATABASE_URL": "postgresql://app@db/auth",
    "REDIS_URL": "redis://cache:6379/0",
    "JWT_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\\n...",
    "TOTP_ENCRYPTION_KEYS": "k1:" + "a" * 44,
    "EMAIL_BACKEND": "sendgrid",
    "SENDGRID_API_KEY": "SG.test-key",
    "METRICS_TOKEN": "m" * 32,
    "CELERY_BROKER_URL": "amqps://app@broker:5671//",
    "JWT_ISSUER": "https://auth.example.com",
    "FRONTEND_URL": "https://app.example.com",
    "CORS_ORIGINS": "https://app.example.com",
}
DEPLOYED = ["staging", "production"]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("development", DevelopmentConfig),
        ("testing", config_module.TestingConfig),
        ("staging", StagingConfig),
        ("production", ProductionConfig),
    ],
)
def test_each_environment_loads_its_class(name, cls):
    config = load_config(environ={**PRODUCTION_ENV, "APP_ENV": name})
    assert type(config) is cls
    config.validate()
    assert name == config.APP_ENV


def test_development_is_the_default_with_sqlite_and_no_redis():
    config = load_config(environ={})
    assert isinstance(config, DevelopmentConfig)
    assert config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    assert config.REDIS_URL is None
    assert config.CELERY_BROKER_URL is None
    assert (config.HOST, config.PORT) == ("127.0.0.1", 5000)


def test_unknown_environment_is_refused():
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_config(environ={"APP_ENV": "prod"})


@pytest.mark.parametrize(
    "missing",
    [
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "JWT_PRIVATE_KEY",
        "TOTP_ENCRYPTION_KEYS",
        "METRICS_TOKEN",
    ],
)
@pytest.mark.parametrize("env_name", DEPLOYED)
def test_production_refuses_to_start_without_each_secret(missing, env_name):
    environ = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    config = load_config(env_name, environ=environ)
    with pytest.raises(ConfigError, match=missing):
        config.validate()


def test_production_refuses_the_development_secret_key():
    config = load_config("production", environ={**PRODUCTION_ENV, "SECRET_KEY": DEV_SECRET_KEY})
    with pytest.raises(ConfigError, match="SECRET_KEY is left at its development default"):
        config.validate()


def test_secret_can_come_from_a_mounted_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file")
    config = load_config(
        "production",
        environ={**PRODUCTION_ENV, "SECRET_KEY": "", "SECRET_KEY_FILE": str(secret_file)},
    )
    assert config.SECRET_KEY == "from-a-file"


def test_bad_integer_names_the_variable():
    with pytest.raises(ConfigError, match="DB_POOL_SIZE"):
        load_config(environ={"DB_POOL_SIZE": "many"})


def test_postgres_pool_settings_come_from_the_environment():
    config = load_config(
        environ={
            "DATABASE_URL": "postgresql://u@h/db",
            "DB_POOL_SIZE": "7",
            "DB_MAX_OVERFLOW": "3",
            "DB_POOL_RECYCLE": "60",
        }
    )
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg2://u@h/db"
    options = config.engine_options()
    assert options["pool_size"] == 7
    assert options["max_overflow"] == 3
    assert options["pool_recycle"] == 60
    # the pre-ping is ours (database.ping_idle_connections), for idle connections only
    assert options["pool_pre_ping"] is False
    assert config.DB_POOL_PRE_PING is True
    assert config.DB_POOL_PING_AFTER == 1.0


def test_unknown_jwt_algorithm_is_refused():
    with pytest.raises(ConfigError, match="JWT_ALGORITHM"):
        load_config(environ={"JWT_ALGORITHM": "HS256"}).validate()


# --- METRICS_TOKEN ------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_production_refuses_to_start_without_a_metrics_token(env_name):
    environ = {k: v for k, v in PRODUCTION_ENV.items() if k != "METRICS_TOKEN"}
    with pytest.raises(ConfigError, match="METRICS_TOKEN must be set") as refused:
        load_config(env_name, environ=environ).validate()
    assert "METRICS_TOKEN_FILE" in str(refused.value)


def test_production_takes_the_metrics_token_from_a_mounted_file(tmp_path):
    token_file = tmp_path / "metrics-token"
    token_file.write_text("scrape-token-from-a-file")
    environ = {k: v for k, v in PRODUCTION_ENV.items() if k != "METRICS_TOKEN"}
    config = load_config("production", environ={**environ, "METRICS_TOKEN_FILE": str(token_file)})
    config.validate()
    assert config.METRICS_TOKEN == "scrape-token-from-a-file"


@pytest.mark.parametrize("env_name", ["development", "testing"])
def test_development_and_testing_need_no_metrics_token(env_name):
    config = load_config(env_name, environ={})
    assert config.METRICS_TOKEN is None
    config.validate()


# --- CHANGE_ME placeholders ---------------------------------------------------------------

PLACEHOLDER_SETTINGS = [
    "SECRET_KEY",
    "JWT_PRIVATE_KEY",
    "TOTP_ENCRYPTION_KEYS",
    "METRICS_TOKEN",
    "SMTP_PASSWORD",
    "SENDGRID_API_KEY",
    "GOOGLE_CLIENT_SECRET",
    "GITHUB_CLIENT_SECRET",
    "APPLE_PRIVATE_KEY",
    "TWILIO_AUTH_TOKEN",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "EMAIL_FROM",
]
# As infrastructure/kubernetes/secret.yaml writes them, and in other letter cases.
PLACEHOLDER_VALUES = [
    "CHANGE_ME",
    "change_me",
    "Change_Me",
    "rediss://:CHANGE_ME_PASSWORD@CHANGE_ME_HOST:6379/0",
    "postgresql://CHANGE_ME_USER:s3cret-part@db.internal:5432/auth",
]


@pytest.mark.parametrize("value", PLACEHOLDER_VALUES)
@pytest.mark.parametrize("name", PLACEHOLDER_SETTINGS)
@pytest.mark.parametrize("env_name", DEPLOYED)
def test_production_refuses_a_change_me_placeholder_in_any_setting(env_name, name, value):
    config = load_config(env_name, environ={**PRODUCTION_ENV, name: value})
    with pytest.raises(ConfigError, match=rf"^{name} still holds the template placeholder"):
        config.validate()


def test_placeholder_refusal_never_shows_the_value():
    secret = "postgresql://app:kept-secret-4e1f@db.internal/auth?CHANGE_ME"
    config = load_config("production", environ={**PRODUCTION_ENV, "DATABASE_URL": secret})
    with pytest.raises(ConfigError) as refused:
        config.validate()
    message = str(refused.value)
    assert "DATABASE_URL" in message
    assert "kept-secret" not in message and "db.internal" not in message


def test_production_refuses_a_placeholder_read_from_a_mounted_file(tmp_path):
    secret_file = tmp_path / "secret-key"
    secret_file.write_text(PLACEHOLDER)
    environ = {**PRODUCTION_ENV, "SECRET_KEY": "", "SECRET_KEY_FILE": str(secret_file)}
    with pytest.raises(ConfigError, match="^SECRET_KEY still holds the template placeholder"):
        load_config("production", environ=environ).validate()


def test_production_refuses_a_placeholder_among_cors_origins():
    environ = {**PRODUCTION_ENV, "CORS_ORIGINS": "https://app.example.com,https://CHANGE_ME"}
    with pytest.raises(ConfigError, match="^CORS_ORIGINS still holds the template placeholder"):
        load_config("production", environ=environ).validate()


@pytest.mark.parametrize("value", ["exchange_meter", "CHANGE_MEANT", "xchange_me", "change-me"])
def test_only_the_templates_marker_counts_as_a_placeholder(value):
    # "change-me" is the tail of the development defaults, refused by their own rule
    load_config("production", environ={**PRODUCTION_ENV, "SMTP_PASSWORD": value}).validate()


@pytest.mark.parametrize("env_name", ["development", "testing"])
def test_development_and_testing_accept_placeholders(env_name):
    load_config(env_name, environ={"SECRET_KEY": PLACEHOLDER}).validate()


# --- public URLs --------------------------------------------------------------------------

INSECURE_URLS = [
    "http://auth.example.com",
    "HTTP://auth.example.com",
    "auth.example.com",
    "https://localhost",
    "https://LOCALHOST:8443/",
    "https://app.localhost",
    "https://127.0.0.1:8443",
    "https://127.0.0.2",
    "https://[::1]:8443",
    "https://[::ffff:127.0.0.1]",
    "https://0.0.0.0:8000",
    "http://localhost:3000",
]


@pytest.mark.parametrize("url", INSECURE_URLS)
@pytest.mark.parametrize("name", ["JWT_ISSUER", "FRONTEND_URL", "CORS_ORIGINS"])
@pytest.mark.parametrize("env_name", DEPLOYED)
def test_production_refuses_http_or_localhost_public_urls(env_name, name, url):
    config = load_config(env_name, environ={**PRODUCTION_ENV, name: url})
    with pytest.raises(ConfigError, match=rf"^{name}\b.*ALLOW_INSECURE_URLS"):
        config.validate()


def test_production_names_the_insecure_cors_origin_by_position():
    environ = {**PRODUCTION_ENV, "CORS_ORIGINS": "https://app.example.com,http://localhost:3000"}
    with pytest.raises(ConfigError, match=r"^CORS_ORIGINS \(entry 2 of 2\) must be an https"):
        load_config("production", environ=environ).validate()


def test_production_refuses_the_default_issuer_and_frontend():
    environ = {k: v for k, v in PRODUCTION_ENV.items() if k not in {"JWT_ISSUER", "FRONTEND_URL"}}
    with pytest.raises(ConfigError, match="^JWT_ISSUER must be an https:// URL"):
        load_config("production", environ=environ).validate()
    environ["JWT_ISSUER"] = "https://auth.example.com"
    with pytest.raises(ConfigError, match="^FRONTEND_URL must be an https:// URL"):
        load_config("production", environ=environ).validate()


@pytest.mark.parametrize("url", INSECURE_URLS)
@pytest.mark.parametrize("env_name", DEPLOYED)
def test_allow_insecure_urls_lets_production_use_local_urls(env_name, url):
    environ = {
        **PRODUCTION_ENV,
        "JWT_ISSUER": url,
        "FRONTEND_URL": url,
        "CORS_ORIGINS": url,
        "ALLOW_INSECURE_URLS": "true",
    }
    config = load_config(env_name, environ=environ)
    assert config.ALLOW_INSECURE_URLS is True
    config.validate()


@pytest.mark.parametrize(
    "url", ["https://auth.example.com", "https://localhost.example.com", "https://10.0.0.5:8443"]
)
def test_production_accepts_public_https_urls(url):
    environ = {**PRODUCTION_ENV, "JWT_ISSUER": url, "FRONTEND_URL": url, "CORS_ORIGINS": url}
    load_config("production", environ=environ).validate()


@pytest.mark.parametrize("env_name", ["development", "testing"])
def test_development_and_testing_keep_their_local_http_defaults(env_name):
    config = load_config(env_name, environ={})
    assert config.FRONTEND_URL == "http://localhost:3000"
    assert config.JWT_ISSUER == "http://127.0.0.1:5000"
    config.validate()


# --- SMTP without TLS ---------------------------------------------------------------------

SMTP_ENV = {**PRODUCTION_ENV, "EMAIL_BACKEND": "smtp", "SMTP_HOST": "smtp.example.com"}


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_production_refuses_smtp_without_tls(env_name):
    config = load_config(env_name, environ={**SMTP_ENV, "SMTP_SECURITY": "none"})
    with pytest.raises(ConfigError, match="^SMTP_SECURITY=none.*SMTP_ALLOW_PLAINTEXT=true"):
        config.validate()


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_smtp_allow_plaintext_lets_production_send_without_tls(env_name):
    environ = {**SMTP_ENV, "SMTP_SECURITY": "none", "SMTP_ALLOW_PLAINTEXT": "true"}
    config = load_config(env_name, environ=environ)
    assert config.SMTP_ALLOW_PLAINTEXT is True
    config.validate()


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_production_accepts_smtp_with_tls(security):
    load_config("production", environ={**SMTP_ENV, "SMTP_SECURITY": security}).validate()


def test_smtp_security_none_matters_only_to_the_smtp_backend():
    load_config("production", environ={**PRODUCTION_ENV, "SMTP_SECURITY": "none"}).validate()


@pytest.mark.parametrize("env_name", ["development", "testing"])
def test_development_and_testing_may_use_smtp_without_tls(env_name):
    environ = {"EMAIL_BACKEND": "smtp", "SMTP_SECURITY": "none"}
    load_config(env_name, environ=environ).validate()


# --- the broker, or in-process delivery as a decision --------------------------------------


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_production_refuses_to_start_without_a_broker(env_name):
    environ = {k: v for k, v in PRODUCTION_ENV.items() if k != "CELERY_BROKER_URL"}
    with pytest.raises(
        ConfigError, match="^CELERY_BROKER_URL must be set.*EMAIL_DELIVERY_IN_PROCESS"
    ):
        load_config(env_name, environ=environ).validate()


@pytest.mark.parametrize("env_name", DEPLOYED)
def test_email_delivery_in_process_lets_production_run_without_a_broker(env_name):
    environ = {k: v for k, v in PRODUCTION_ENV.items() if k != "CELERY_BROKER_URL"}
    config = load_config(env_name, environ={**environ, "EMAIL_DELIVERY_IN_PROCESS": "true"})
    assert config.EMAIL_DELIVERY_IN_PROCESS is True
    config.validate()


@pytest.mark.parametrize("env_name", ["development", "testing"])
def test_development_and_testing_deliver_in_process_without_a_flag(env_name):
    config = load_config(env_name, environ={})
    assert config.CELERY_BROKER_URL is None
    assert config.EMAIL_DELIVERY_IN_PROCESS is False
    config.validate()


# --- defaults of the new settings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("env_name", "required"),
    [("development", False), ("testing", False), ("staging", True), ("production", True)],
)
def test_email_verification_is_required_by_default_in_staging_and_production(env_name, required):
    assert load_config(env_name, environ={}).REQUIRE_EMAIL_VERIFICATION is required


@pytest.mark.parametrize("env_name", ["development", "testing", "staging", "production"])
@pytest.mark.parametrize("value", ["true", "false"])
def test_require_email_verification_follows_the_environment_variable(env_name, value):
    config = load_config(env_name, environ={"REQUIRE_EMAIL_VERIFICATION": value})
    assert config.REQUIRE_EMAIL_VERIFICATION is (value == "true")


@pytest.mark.parametrize("env_name", ["development", "testing", "staging", "production"])
def test_the_escape_hatches_are_off_by_default(env_name):
    config = load_config(env_name, environ={})
    assert config.ALLOW_INSECURE_URLS is False
    assert config.SMTP_ALLOW_PLAINTEXT is False
    assert config.EMAIL_DELIVERY_IN_PROCESS is False


def test_env_example_lists_the_production_switches_with_their_defaults():
    example = dotenv_values(Path(__file__).resolve().parents[2] / ".env.example")
    for name in ("ALLOW_INSECURE_URLS", "SMTP_ALLOW_PLAINTEXT", "EMAIL_DELIVERY_IN_PROCESS"):
        assert example[name] == "false", name
    # empty: each environment's own default applies (true in staging and production)
    assert example["REQUIRE_EMAIL_VERIFICATION"] == ""
    assert example["ADMIN_REQUIRE_2FA"] == ""
    assert example["METRICS_TOKEN"] == ""
    # copied to .env by scripts/setup.sh, it must still start development
    environ = {name: value or "" for name, value in example.items()}
    load_config(environ=environ).validate()


def test_argon2_queue_timeout_is_a_positive_number_of_seconds():
    assert load_config("development", environ={}).ARGON2_QUEUE_TIMEOUT == 1.0
    assert (
        load_config("development", environ={"ARGON2_QUEUE_TIMEOUT": "2.5"}).ARGON2_QUEUE_TIMEOUT
        == 2.5
    )
    with pytest.raises(ConfigError, match="ARGON2_QUEUE_TIMEOUT"):
        load_config("development", environ={"ARGON2_QUEUE_TIMEOUT": "0"}).validate()


@pytest.mark.parametrize(
    ("name", "value"), [("ARGON2_MAX_WAITING", "-1"), ("ARGON2_NICE", "20"), ("ARGON2_NICE", "-1")]
)
def test_hash_queue_bounds_are_checked(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config("development", environ={name: value}).validate()


@pytest.mark.parametrize(
    ("env_name", "required"),
    [("development", False), ("testing", False), ("staging", True), ("production", True)],
)
def test_admin_changes_need_a_second_factor_in_deployed_environments(env_name, required):
    assert load_config(env_name, environ={}).ADMIN_REQUIRE_2FA is required
    assert load_config(env_name, environ={"ADMIN_REQUIRE_2FA": "false"}).ADMIN_REQUIRE_2FA is False
