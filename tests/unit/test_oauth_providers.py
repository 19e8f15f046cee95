"""Providers without a network: registry, Apple's client secret, metadata cache, JWKS key choice."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from auth_microservice_app.config import ConfigError, load_config
from auth_microservice_app.errors import UpstreamError
from auth_microservice_app.oauth.providers import (
    AppleProvider,
    GitHubProvider,
    GoogleProvider,
    ProviderContext,
    configured_providers,
    load_provider,
)
from auth_microservice_app.oauth.providers import base as provider_base
from auth_microservice_app.oauth.providers.apple import APPLE_AUDIENCE
from auth_microservice_app.oauth.providers.base import MetadataCache
from auth_microservice_app.oauth.providers.oidc import OpenIDClient
from tests.unit.test_config import PRODUCTION_ENV

DEFAULTS = load_config("testing", environ={})


def context(**settings: object) -> ProviderContext:
    config = {name: getattr(DEFAULTS, name) for name in dir(DEFAULTS) if name.isupper()}
    config.update(settings)
    return ProviderContext(config=config)


def ec_pem() -> tuple[str, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode(), key


def test_a_provider_without_client_id_is_not_configured():
    assert configured_providers(context()) == []
    assert load_provider("google", context()) is None
    assert load_provider("twitter", context(GOOGLE_CLIENT_ID="x")) is None


def test_registry_finds_each_configured_provider_by_name():
    ctx = context(GOOGLE_CLIENT_ID="g", GITHUB_CLIENT_ID="h", APPLE_CLIENT_ID="a")
    assert [type(p) for p in configured_providers(ctx)] == [
        GoogleProvider,
        GitHubProvider,
        AppleProvider,
    ]
    assert [(p.name, p.display_name) for p in configured_providers(ctx)] == [
        ("google", "Google"),
        ("github", "GitHub"),
        ("apple", "Apple"),
    ]


def test_default_urls_are_the_providers_own():
    assert DEFAULTS.GOOGLE_DISCOVERY_URL == (
        "https://accounts.google.com/.well-known/openid-configuration"
    )
    assert DEFAULTS.APPLE_DISCOVERY_URL == (
        "https://appleid.apple.com/.well-known/openid-configuration"
    )
    github = load_provider("github", context(GITHUB_CLIENT_ID="h"))
    assert isinstance(github, GitHubProvider)
    assert github.authorize_url == "https://github.com/login/oauth/authorize"
    assert github.token_url == "https://github.com/login/oauth/access_token"
    assert github.api_url == "https://api.github.com"


def test_apple_client_secret_is_signed_es256_with_the_team_key():
    pem, key = ec_pem()
    apple = load_provider(
        "apple",
        context(
            APPLE_CLIENT_ID="com.example.web",
            APPLE_TEAM_ID="TEAM",
            APPLE_KEY_ID="KID1",
            APPLE_PRIVATE_KEY=pem,
        ),
    )
    assert isinstance(apple, AppleProvider)
    secret = apple.signed_client_secret()
    header = jwt.get_unverified_header(secret)
    assert (header["alg"], header["kid"]) == ("ES256", "KID1")
    claims = jwt.decode(
        secret, key.public_key(), algorithms=["ES256"], audience=APPLE_AUDIENCE, issuer="TEAM"
    )
    assert claims["sub"] == "com.example.web"
    assert claims["aud"] == "https://appleid.apple.com"
    assert claims["iat"] <= time.time() < claims["exp"] <= claims["iat"] + 600


def test_apple_client_secret_does_not_verify_with_another_key():
    pem, _key = ec_pem()
    _other_pem, other = ec_pem()
    apple = load_provider(
        "apple",
        context(APPLE_CLIENT_ID="c", APPLE_TEAM_ID="T", APPLE_KEY_ID="K", APPLE_PRIVATE_KEY=pem),
    )
    assert isinstance(apple, AppleProvider)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            apple.signed_client_secret(),
            other.public_key(),
            algorithms=["ES256"],
            audience=APPLE_AUDIENCE,
        )


@pytest.mark.parametrize(
    "settings",
    [
        {"APPLE_TEAM_ID": "T", "APPLE_KEY_ID": "K"},
        {"APPLE_TEAM_ID": "T", "APPLE_KEY_ID": "K", "APPLE_PRIVATE_KEY": "not a pem"},
    ],
)
def test_apple_client_secret_without_a_usable_key_is_an_upstream_error(settings):
    apple = load_provider("apple", context(APPLE_CLIENT_ID="c", **settings))
    assert isinstance(apple, AppleProvider)
    with pytest.raises(UpstreamError):
        apple.signed_client_secret()


def test_metadata_cache_keeps_documents_for_their_ttl(monkeypatch):
    calls: list[str] = []

    def fetch(url: str, *, timeout: float) -> dict[str, str]:
        calls.append(url)
        return {"n": str(len(calls))}

    monkeypatch.setattr(provider_base, "fetch_json", fetch)
    cache = MetadataCache()
    assert cache.get("u", max_age=60, timeout=1) == {"n": "1"}
    assert cache.get("u", max_age=60, timeout=1) == {"n": "1"}
    assert cache.get("u", max_age=0, timeout=1) == {"n": "2"}
    assert calls == ["u", "u"]
    assert cache.age("u") is not None
    assert cache.age("other") is None


def test_metadata_cache_never_keeps_a_failure(monkeypatch):
    answers: list[object] = [UpstreamError(), {"ok": True}]

    def fetch(url: str, *, timeout: float) -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(provider_base, "fetch_json", fetch)
    cache = MetadataCache()
    with pytest.raises(UpstreamError):
        cache.get("u", max_age=60, timeout=1)
    assert cache.get("u", max_age=60, timeout=1) == {"ok": True}


def jwk(kid: str | None, use: str | None = "sig") -> dict[str, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    data = json.loads(RSAAlgorithm.to_jwk(key))
    if kid is not None:
        data["kid"] = kid
    if use is not None:
        data["use"] = use
    return data


def test_signing_key_is_chosen_by_kid_and_never_an_encryption_key():
    keys = jwt.PyJWKSet.from_dict({"keys": [jwk("a"), jwk("b"), jwk("c", use="enc")]})
    assert OpenIDClient._find_key(keys, "b").key_id == "b"
    assert OpenIDClient._find_key(keys, "c") is None
    assert OpenIDClient._find_key(keys, "z") is None
    assert OpenIDClient._find_key(keys, None) is None  # ambiguous without a kid
    single = jwt.PyJWKSet.from_dict({"keys": [jwk("only")]})
    assert OpenIDClient._find_key(single, None).key_id == "only"


def test_only_asymmetric_algorithms_the_provider_advertises_are_accepted():
    advertised = {"id_token_signing_alg_values_supported": ["RS256", "HS256", "none", "ES256"]}
    assert OpenIDClient._algorithms(advertised) == {"RS256", "ES256"}
    assert OpenIDClient._algorithms({}) == {"RS256"}


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({"GOOGLE_CLIENT_ID": "g"}, "GOOGLE_CLIENT_SECRET"),
        ({"GITHUB_CLIENT_ID": "h"}, "GITHUB_CLIENT_SECRET"),
        ({"APPLE_CLIENT_ID": "a", "APPLE_TEAM_ID": "T", "APPLE_KEY_ID": "K"}, "APPLE_PRIVATE_KEY"),
        ({"APPLE_CLIENT_ID": "a", "APPLE_PRIVATE_KEY": "pem"}, "APPLE_TEAM_ID"),
    ],
)
def test_production_refuses_a_configured_provider_without_its_secret(settings, missing):
    env = {**PRODUCTION_ENV, "OAUTH_CALLBACK_BASE_URL": "https://auth.example.com", **settings}
    with pytest.raises(ConfigError, match=missing):
        load_config(environ=env).validate()


def test_production_needs_an_https_callback_when_a_provider_is_configured():
    env = {**PRODUCTION_ENV, "GOOGLE_CLIENT_ID": "g", "GOOGLE_CLIENT_SECRET": "s"}
    with pytest.raises(ConfigError, match="OAUTH_CALLBACK_BASE_URL"):
        load_config(environ=env).validate()
    env["OAUTH_CALLBACK_BASE_URL"] = "https://auth.example.com"
    load_config(environ=env).validate()


def test_provider_secrets_may_come_from_files(tmp_path):
    path = tmp_path / "apple.p8"
    path.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    config = load_config(environ={"APPLE_PRIVATE_KEY_FILE": str(path)})
    assert config.APPLE_PRIVATE_KEY.startswith("-----BEGIN PRIVATE KEY-----")


def test_development_does_not_require_provider_secrets():
    load_config(environ={"GOOGLE_CLIENT_ID": "g"}).validate()


def test_oauth_lists_are_comma_separated():
    config = load_config(
        environ={
            "OAUTH_REDIRECT_ALLOWLIST": "https://a.example/cb, myapp://cb",
            "GOOGLE_EXTRA_AUDIENCES": "ios,android",
        }
    )
    assert config.OAUTH_REDIRECT_ALLOWLIST == ["https://a.example/cb", "myapp://cb"]
    assert config.GOOGLE_EXTRA_AUDIENCES == ["ios", "android"]
    assert config.OAUTH_CODE_TTL == 60


def test_env_example_lists_every_oauth_setting_with_its_default():
    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    documented = dict(re.findall(r"^([A-Z_]+)=(.*)$", text, flags=re.MULTILINE))
    names = [n for n in dir(DEFAULTS) if n.startswith(("OAUTH_", "GOOGLE_", "GITHUB_", "APPLE_"))]
    assert len(names) >= 20
    for name in names:
        assert name in documented, name
        default = getattr(DEFAULTS, name)
        if isinstance(default, str) and name != "OAUTH_CALLBACK_BASE_URL":
            assert documented[name] == default, name
        elif isinstance(default, int | float) and not isinstance(default, bool):
            assert float(documented[name]) == default, name
