"""`POST /oauth2/revoke` (RFC 7009) and the discovery documents (RFC 8414, OIDC discovery)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from auth_microservice_app.identity import tokens as token_kinds

from .conftest import Client, create, introspect, service_token


def test_a_client_revokes_its_own_token(client, orders, gateway):
    token = service_token(client, orders)["access_token"]
    response = client.post("/oauth2/revoke", data={"token": token}, headers=orders.basic())
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert introspect(client, gateway, token) == {"active": False}


def test_an_unknown_token_is_200_and_changes_nothing(client, orders):
    response = client.post("/oauth2/revoke", data={"token": "nope"}, headers=orders.basic())
    assert response.status_code == 200


def test_another_clients_or_a_users_token_is_refused_and_stays_active(
    app, client, auth, orders, gateway
):
    others = service_token(client, gateway)["access_token"]
    users = auth.signup_and_login()["access_token"]
    for token in (others, users):
        response = client.post("/oauth2/revoke", data={"token": token}, headers=orders.basic())
        assert response.status_code == 400
        assert response.json["error"] == "invalid_grant"
        assert introspect(client, gateway, token)["active"] is True


def test_revocation_needs_client_authentication(client, orders):
    token = service_token(client, orders)["access_token"]
    response = client.post("/oauth2/revoke", data={"token": token})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_an_unsupported_hint_is_400(client, orders):
    response = client.post(
        "/oauth2/revoke", data={"token": "x", "token_type_hint": "id_token"}, headers=orders.basic()
    )
    assert response.status_code == 400
    assert response.json["error"] == "unsupported_token_type"


class OurMetadata(AuthorizationServerMetadata):
    """Authlib's RFC 8414 checks, but one: ``response_types_supported`` is REQUIRED and Authlib
    wants it non-empty, while this server has no authorization endpoint at all (users sign in
    through the JSON API, services with client credentials): the true list is empty."""

    def validate_response_types_supported(self) -> None:
        assert self["response_types_supported"] == []


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
)
def test_discovery_documents_are_valid_rfc8414_metadata(app, client, orders, path):
    app.config["JWT_ISSUER"] = "https://auth.test"  # Authlib insists on https endpoints
    document = client.get(path).json
    OurMetadata(document).validate()
    assert document["issuer"] == "https://auth.test"
    assert document["token_endpoint"] == "https://auth.test/oauth2/token"
    assert document["introspection_endpoint"] == "https://auth.test/oauth2/introspect"
    assert document["revocation_endpoint"] == "https://auth.test/oauth2/revoke"
    assert document["grant_types_supported"] == ["client_credentials"]
    assert document["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert set(document["scopes_supported"]) == {"introspect", "orders:read", "orders:write"}


def test_openid_configuration_promises_nothing_we_do_not_do(client):
    document = client.get("/.well-known/openid-configuration").json
    assert "userinfo_endpoint" not in document
    assert not [name for name in document if name.startswith("id_token")]
    assert "/api/v1/auth/login" not in json.dumps(document)
    assert document["claims_supported"] == list(token_kinds.ACCESS_TOKEN_CLAIMS)
    assert document["jwks_uri"].endswith("/.well-known/jwks.json")


def test_the_cli_creates_lists_rotates_disables_and_deletes(app, client, gateway):
    runner = app.test_cli_runner()

    created = runner.invoke(
        args=["clients", "create", "reports", "--scope", "reports:read", "--json"]
    )
    assert created.exit_code == 0, created.output
    credentials = json.loads(created.stdout)
    reports = Client(credentials["client_id"], credentials["client_secret"])
    token = service_token(client, reports)["access_token"]

    listed = runner.invoke(args=["clients", "list", "--json"])
    rows = {row["client_id"]: row for row in json.loads(listed.stdout)}
    assert rows[reports.client_id]["scopes"] == ["reports:read"]
    assert reports.secret not in listed.output

    rotated = runner.invoke(args=["clients", "rotate-secret", reports.client_id, "--json"])
    assert rotated.exit_code == 0
    assert json.loads(rotated.stdout)["client_secret"] != reports.secret

    assert runner.invoke(args=["clients", "disable", reports.client_id]).exit_code == 0
    assert introspect(client, gateway, token) == {"active": False}
    assert runner.invoke(args=["clients", "enable", reports.client_id]).exit_code == 0

    deleted = runner.invoke(args=["clients", "delete", reports.client_id])
    assert deleted.exit_code == 0
    listed = runner.invoke(args=["clients", "list", "--json"])
    assert reports.client_id not in listed.stdout

    missing = runner.invoke(args=["clients", "delete", "svc_nobody"])
    assert missing.exit_code == 1
    assert "Error: No such client." in missing.output

    bad = runner.invoke(args=["clients", "create", "x", "--scope", "Not A Scope"])
    assert bad.exit_code == 1
    assert "Traceback" not in bad.output


def test_token_requests_are_limited_per_client_in_the_oauth_shape(make_other_app):
    limited = make_other_app(RATELIMIT_ENABLED=True, RATELIMIT_OAUTH2_TOKEN="2/minute")
    http = limited.test_client()
    one, other = create(limited, "one"), create(limited, "two")
    for _ in range(2):
        service_token(http, one)
    refused = http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=one.basic()
    )
    assert refused.status_code == 429
    assert refused.json["error"] == "rate_limited"
    assert "error_description" in refused.json
    assert int(refused.headers["Retry-After"]) > 0
    assert service_token(http, other)  # another client, same IP: its own budget


def test_failed_client_authentication_is_limited_per_ip(make_other_app):
    limited = make_other_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3/minute")
    http = limited.test_client()
    real = create(limited, "real")
    for number in range(3):
        guess = Client(f"svc_guess{number}", "x")
        response = http.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, headers=guess.basic()
        )
        assert response.status_code == 401
    response = http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=real.basic()
    )
    assert response.status_code == 429


def test_the_readmes_client_commands_work_as_typed(app):
    """The README's block of `clients` commands, word for word (in-process, for speed)."""
    import shlex

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme.split("```sh\nflask --app auth_microservice_app.app clients create", 1)[1]
    lines = ["flask --app auth_microservice_app.app clients create" + block.split("```")[0]]
    lines = [line for line in "".join(lines).splitlines() if line.strip()]
    assert len(lines) == 6
    runner = app.test_cli_runner()
    client_id = ""
    for line in lines:
        words = shlex.split(line.split("  #")[0].replace("$CLIENT_ID", client_id))
        assert words[:3] == ["flask", "--app", "auth_microservice_app.app"]
        result = runner.invoke(args=words[3:])
        assert result.exit_code == 0, f"{line}\n{result.output}"
        if "--json" in words:
            client_id = json.loads(result.stdout)["client_id"]
    assert client_id.startswith("svc_")
