"""A real OpenID provider on loopback (node oidc-provider) and helpers to drive its login pages.

The provider is `tests/oidc_provider/server.mjs`; `npm ci` runs there first when its
`node_modules` is missing. Its id_token signing key is made here, so tests can also forge
tokens the provider would have signed (wrong audience, expired) and tokens it would not have.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import OAuthAccount, User
from tests.conftest import PASSWORD, Mailbox, make_app

PROVIDER_DIR = Path(__file__).resolve().parents[2] / "oidc_provider"
STARTUP_TIMEOUT = 30.0
NPM_TIMEOUT = 300.0
HTTP_TIMEOUT = 10.0

CLIENT_ID = "auth-service-web"
CLIENT_SECRET = "oidc-test-client-secret"
OUR_BASE = "http://localhost"
CALLBACK = f"{OUR_BASE}/api/v1/oauth/google/callback"
NATIVE_REDIRECT = f"{OUR_BASE}/native-app/callback"
CLIENT_REDIRECT = "https://app.example.com/oauth/done"
SIGNING_KID = "oidc-test-rs256"
ACCOUNTS = {
    "verified": {
        "email": "vera@example.com",
        "email_verified": True,
        "name": "Vera Verified",
    },
    "unverified": {
        "email": "una@example.com",
        "email_verified": False,
        "name": "Una Unverified",
    },
    "other": {"email": "otto@example.com", "email_verified": True, "name": "Otto Other"},
}


@dataclass(frozen=True)
class OidcProvider:
    issuer: str
    signing_key: rsa.RSAPrivateKey
    kid: str = SIGNING_KID

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        response = requests.get(self.discovery_url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return dict(response.json())

    def sign(self, claims: dict[str, Any], *, key: Any = None, kid: str | None = None) -> str:
        """An id_token signed with the provider's key (or ``key``), RS256."""
        return jwt.encode(
            claims, key or self.signing_key, algorithm="RS256", headers={"kid": kid or self.kid}
        )

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "verified",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "email": ACCOUNTS["verified"]["email"],
            "email_verified": True,
        }
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_node_modules() -> None:
    if (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed for the OAuth end-to-end tests (npm ci in tests/oidc_provider)")
    subprocess.run(  # noqa: S603 - a fixed command
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=PROVIDER_DIR,
        check=True,
        timeout=NPM_TIMEOUT,
        stdout=subprocess.DEVNULL,
    )


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"oidc-provider exited early:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"oidc-provider did not answer within {STARTUP_TIMEOUT}s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed for the OAuth end-to-end tests")
    _ensure_node_modules()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key)), "kid": SIGNING_KID, "alg": "RS256", "use": "sig"}
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_ISSUER": issuer,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URIS": f"{CALLBACK},{NATIVE_REDIRECT}",
        "OIDC_ACCOUNTS": json.dumps(ACCOUNTS),
        "OIDC_JWKS": json.dumps({"keys": [jwk]}),
    }
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - a fixed command
            [node, "server.mjs"], cwd=PROVIDER_DIR, env=env, stdout=output, stderr=output
        )
    try:
        provider = OidcProvider(issuer=issuer, signing_key=key)
        _wait_until_up(process, provider.discovery_url, log)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def google_settings(provider: OidcProvider, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "GOOGLE_CLIENT_ID": CLIENT_ID,
        "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "GOOGLE_DISCOVERY_URL": provider.discovery_url,
        "GOOGLE_EXTRA_AUDIENCES": ["ios-app-client-id"],
        "OAUTH_REDIRECT_ALLOWLIST": [CLIENT_REDIRECT],
        "OAUTH_CALLBACK_BASE_URL": OUR_BASE,
    }
    settings.update(overrides)
    return settings


@pytest.fixture(scope="session")
def google_app(app: Flask, signing_key_pem: str, oidc_provider: OidcProvider) -> Iterator[Flask]:
    """The service with "Google" pointing at the loopback provider (``app`` built the schema)."""
    application = make_app(signing_key_pem, **google_settings(oidc_provider))
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def google_client(google_app: Flask) -> FlaskClient:
    return google_app.test_client()


# --- driving the provider's pages ------------------------------------------------------------


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def drive_provider(
    authorization_url: str, *, login: str = "verified", stop_at: str, abort: bool = False
) -> str:
    """Log in (and consent) at the provider like a browser; the URL it finally sends us to.

    ``stop_at`` is the redirect URI prefix where the browser would leave the provider.
    """
    with requests.Session() as browser:
        url = authorization_url
        for _ in range(20):
            response = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
            while response.is_redirect:
                url = urljoin(url, response.headers["Location"])
                if url.startswith(stop_at):
                    return url
                response = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
            assert response.status_code == 200, response.text
            page = response.text
            if abort:
                url = url.rstrip("/") + "/abort"
                continue
            if 'name="prompt" value="login"' in page:
                form = {"prompt": "login", "login": login, "password": "anything"}
            elif 'name="prompt" value="consent"' in page:
                form = {"prompt": "consent"}
            else:
                raise AssertionError(f"unexpected provider page: {page[:500]}")
            response = browser.post(url, data=form, allow_redirects=False, timeout=HTTP_TIMEOUT)
            assert response.is_redirect, response.text
            url = urljoin(url, response.headers["Location"])
            if url.startswith(stop_at):
                return url
    raise AssertionError("the provider never redirected back")


def local(url: str) -> str:
    """The path and query of one of our URLs, for the Flask test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class GoogleFlow:
    """The browser flow against the loopback provider, step by step."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def authorize(self, redirect_uri: str = CLIENT_REDIRECT, **params: str) -> str:
        response = self.client.get(
            "/api/v1/oauth/google/authorize?" + urlencode({"redirect_uri": redirect_uri, **params})
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-store"
        return str(response.headers["Location"])

    def callback_url(self, login: str = "verified", **params: str) -> str:
        return drive_provider(self.authorize(**params), login=login, stop_at=CALLBACK)

    def callback(self, url: str) -> Any:
        return self.client.get(local(url))

    def client_redirect(self, login: str = "verified", **params: str) -> dict[str, str]:
        """The query our callback sends the client (``code``, or ``error``)."""
        response = self.callback(self.callback_url(login, **params))
        assert response.status_code == 302, response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-store"
        location = str(response.headers["Location"])
        assert location.startswith(CLIENT_REDIRECT + "?"), location
        return query(location)

    def exchange(self, code: str) -> Any:
        return self.client.post("/api/v1/oauth/exchange", json={"code": code})

    def sign_in(self, login: str = "verified") -> dict[str, Any]:
        answer = self.client_redirect(login)
        assert "code" in answer, answer
        response = self.exchange(answer["code"])
        assert response.status_code == 200, response.json
        return dict(response.json)


@pytest.fixture
def google_flow(google_client: FlaskClient) -> GoogleFlow:
    return GoogleFlow(google_client)


def native_authorization(
    provider: OidcProvider, *, verifier: str, nonce: str, state: str = "app-state"
) -> str:
    """The authorization URL a native app builds itself (its own PKCE, nonce and redirect)."""
    endpoint = provider.metadata()["authorization_endpoint"]
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": NATIVE_REDIRECT,
        "scope": "openid email profile",
        "state": state,
        "nonce": nonce,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    return f"{endpoint}?{urlencode(params)}"


def native_code(
    provider: OidcProvider, *, verifier: str, nonce: str, login: str = "verified"
) -> str:
    url = native_authorization(provider, verifier=verifier, nonce=nonce)
    return query(drive_provider(url, login=login, stop_at=NATIVE_REDIRECT))["code"]


def provider_id_token(provider: OidcProvider, *, nonce: str, login: str = "verified") -> str:
    """An id_token the provider really issued to the app (code grant done by the 'app')."""
    verifier = "v" * 43 + "-native"
    code = native_code(provider, verifier=verifier, nonce=nonce, login=login)
    response = requests.post(
        provider.metadata()["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": NATIVE_REDIRECT,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def access_claims(pair: dict[str, Any]) -> dict[str, Any]:
    """The claims of our access token (signature checked elsewhere: tests/integration/auth)."""
    return dict(jwt.decode(pair["access_token"], options={"verify_signature": False}))


# --- local accounts and linking --------------------------------------------------------------


def register(client: FlaskClient, email: str, *, verified: bool, app: Flask) -> str:
    """A password account (its email verified or not); returns its id."""
    response = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.json
    if verified:
        set_email_verified(app, email, True)
    return str(response.json["user"]["id"])


def set_email_verified(app: Flask, email: str, verified: bool) -> None:
    with app.app_context():
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        user.email_verified_at = datetime.now(UTC) if verified else None
        db.session.commit()


def login(client: FlaskClient, email: str) -> dict[str, Any]:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.json
    return dict(response.json)


def linked_accounts(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(select(OAuthAccount.provider, OAuthAccount.user_id)).all()
    return [(provider, str(user_id)) for provider, user_id in rows]


def start_link(client: FlaskClient, access_token: str, **body: str) -> str:
    """``POST /<provider>/link`` (Google); the authorization URL to open in a browser."""
    response = client.post(
        "/api/v1/oauth/google/link",
        json={"redirect_uri": CLIENT_REDIRECT, **body},
        headers=bearer(access_token),
    )
    assert response.status_code == 200, response.json
    return str(response.json["authorization_url"])


def confirm_link(client: FlaskClient, access_token: str, code: str) -> Any:
    return client.post(
        "/api/v1/oauth/link/confirm", json={"code": code}, headers=bearer(access_token)
    )


def browser(app: Flask, user_agent: str, ip: str) -> FlaskClient:
    """Another browser: its own cookie jar, user agent and address."""
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": user_agent, "REMOTE_ADDR": ip})
    return client


@pytest.fixture
def google_mailbox(google_app: Flask, mailbox: Mailbox) -> Iterator[Mailbox]:
    """``mailbox``, for the mail that ``google_app`` sends."""
    previous = google_app.config["EMAIL_FILE_DIR"]
    google_app.config["EMAIL_FILE_DIR"] = mailbox.directory
    yield mailbox
    google_app.config["EMAIL_FILE_DIR"] = previous
