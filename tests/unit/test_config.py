from __future__ import annotations

import pytest

from auth_microservice_app import config as config_module
from auth_microservice_app.config import (
    DEV_SECRET_KEY,
    ConfigError,
    DevelopmentConfig,
    ProductionConfig,
    StagingConfig,
    load_config,
)

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
