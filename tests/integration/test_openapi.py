"""The OpenAPI document: valid OpenAPI 3, exactly API.md's endpoints, honest about errors and auth.

API.md is read from ``../shared/docs/API.md`` (beside the clone, locally and in CI).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from auth_microservice_app import apidocs
from auth_microservice_app.auth.schemas import SessionSchema
from auth_microservice_app.web.schemas import TokenPairSchema, UserSchema
from tests.conftest import make_app

pytestmark = pytest.mark.integration

API_MD = Path("../shared/docs/API.md")
#: ``/apispec.json`` as it was last meant to be; see :func:`test_the_document_is_the_snapshot`.
SNAPSHOT = Path(__file__).parent / "snapshots" / "apispec.json"
METHODS = {"get", "post", "put", "patch", "delete"}
#: Operations the code has beyond API.md's endpoint tables, each with the reason.
EXTRA_OPERATIONS = {
    ("GET", "/api/v1/auth/events"): "the user's security-event log; API.md does not list it",
}
#: API.md path -> the path the code serves, where only a path parameter's name differs.
RENAMED_PATH_PARAMETERS = {
    "/api/v1/auth/sessions/{id}": "/api/v1/auth/sessions/{session_id}",
    "/api/v1/admin/users/{id}": "/api/v1/admin/users/{user_id}",
    "/api/v1/admin/users/{id}/sessions": "/api/v1/admin/users/{user_id}/sessions",
    "/api/v1/admin/users/{id}/2fa/reset": "/api/v1/admin/users/{user_id}/2fa/reset",
}


# --- API.md ------------------------------------------------------------------------------------


def api_md() -> str:
    if not API_MD.is_file():
        pytest.fail(f"{API_MD.resolve()} is missing: run the tests from the repository root")
    return API_MD.read_text("utf-8")


def api_md_rows(section: str = "## Endpoints\n") -> list[tuple[str, str, str]]:
    """(method, OpenAPI path, rest of the row) of every row of API.md's endpoint tables (or of
    those in ``## Endpoints being built``)."""
    text = api_md()
    endpoints = text[text.index(section) :]
    endpoints = endpoints[: endpoints.index("\n## ", 1)]
    rows = []
    prefix = ""
    for line in endpoints.splitlines():
        heading = re.match(r"^### .*?(?:\(`([^`]+)`\))?$", line)
        if heading:
            prefix = heading.group(1) or ""
            continue
        row = re.match(r"^\|\s*([A-Z]+(?:/[A-Z]+)*)\s*\|\s*`([^`]+)`\s*\|(.*)$", line)
        if row:
            path = re.sub(r"<([^<>]+)>", r"{\1}", prefix + row.group(2).split("?")[0])
            rows += [(method, path, row.group(3)) for method in row.group(1).split("/")]
    return rows


def api_md_operations() -> set[tuple[str, str]]:
    return {(method, RENAMED_PATH_PARAMETERS.get(path, path)) for method, path, _ in api_md_rows()}


def api_md_operations_being_built() -> set[tuple[str, str]]:
    """The contract of open issues: once a row is served, the document must describe it."""
    rows = api_md_rows("## Endpoints being built\n")
    return {(method, RENAMED_PATH_PARAMETERS.get(path, path)) for method, path, _ in rows}


def api_md_object_fields(sentence_start: str) -> list[str]:
    """The field names of an object API.md spells out, e.g. ``A user object: {"id", ...}``."""
    text = api_md()
    start = text.index(sentence_start)
    return re.findall(r'"([a-z_]+)"', text[start : text.index("}", start)])


# --- the document ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec(app) -> dict[str, Any]:
    response = app.test_client().get("/apispec.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return dict(response.json)


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        section, kind, name = node["$ref"].removeprefix("#/").split("/")
        node = spec[section][kind][name]
    return node


def _snapshot_text(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_the_document_is_the_snapshot(spec):
    """``/apispec.json`` is exactly ``snapshots/apispec.json``: moving the description around
    (tables, schemas, examples) must not change one path, operation, schema or example.

    The snapshot changes only when an API change is intended. Then regenerate it, and review
    its diff with the change:

        UPDATE_APISPEC_SNAPSHOT=1 .venv/bin/pytest -q tests/integration/test_openapi.py -k snapshot

    ``info.version`` is the package's version, compared with it rather than with the snapshot,
    so that a release does not need a new snapshot.
    """
    document = json.loads(json.dumps(spec))
    assert document["info"]["version"] == apidocs._version()
    if os.environ.get("UPDATE_APISPEC_SNAPSHOT") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(_snapshot_text(document), "utf-8")
    expected = json.loads(SNAPSHOT.read_text("utf-8"))
    document["info"]["version"] = expected["info"]["version"]
    if document == expected:
        return
    changed = sorted(
        f"{section}: {name}"
        for section in ("paths", "components")
        for name in set(document.get(section, {})) | set(expected.get(section, {}))
        if document.get(section, {}).get(name) != expected.get(section, {}).get(name)
    )
    others = sorted(
        key
        for key in set(document) | set(expected)
        if key not in ("paths", "components") and document.get(key) != expected.get(key)
    )
    diff = "".join(
        difflib.unified_diff(
            _snapshot_text(expected).splitlines(keepends=True),
            _snapshot_text(document).splitlines(keepends=True),
            "snapshots/apispec.json",
            "/apispec.json",
            n=2,
        )
    )
    pytest.fail(
        f"/apispec.json differs from {SNAPSHOT.name} in {changed + others}; if the API change is "
        f"intended, regenerate it with UPDATE_APISPEC_SNAPSHOT=1 (see the docstring).\n"
        + diff[:20000]
    )


def test_the_document_is_valid_openapi_3(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.0")
    assert spec["info"]["title"] and spec["info"]["version"] and spec["info"]["description"]
    assert spec["servers"] == [{"url": "/"}]


def test_the_operations_are_api_md_s_plus_the_listed_extras(spec):
    documented = {(method, path) for method, path, _ in operations(spec)}
    being_built = api_md_operations_being_built()
    assert being_built, "API.md's 'Endpoints being built' rows were not found"
    # a row being built joins the comparison once served (every route is documented: below)
    expected = api_md_operations() | (being_built & documented) | set(EXTRA_OPERATIONS)
    assert documented - expected == set(), "documented but neither in API.md nor listed as extra"
    assert expected - documented == set(), "in API.md (or listed as extra) but not documented"


def test_listed_differences_from_api_md_are_still_differences():
    rows = {(method, path) for method, path, _ in api_md_rows()}
    assert not set(EXTRA_OPERATIONS) & rows, "API.md lists it now: drop it from EXTRA_OPERATIONS"
    being_built = api_md_rows("## Endpoints being built\n")
    assert set(RENAMED_PATH_PARAMETERS) <= {path for _, path, _ in api_md_rows() + being_built}


def test_every_route_of_the_app_is_documented(app):
    assert apidocs.undocumented_endpoints(app) == [], "describe them in an openapi.py table"
    assert apidocs.stale_entries(app) == [], "the openapi.py tables name routes that do not exist"


def test_path_parameters_are_in_openapi_form(spec):
    for path, item in spec["paths"].items():
        assert "<" not in path and ">" not in path
        names = set(re.findall(r"{([^}]+)}", path))
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert names == declared, path


# --- errors, auth, bodies ----------------------------------------------------------------------


def error_codes_of(spec: dict[str, Any], response: dict[str, Any]) -> set[str]:
    examples = resolve(spec, response)["content"]["application/json"]["examples"]
    return {resolve(spec, example)["value"]["error"]["code"] for example in examples.values()}


def test_every_error_response_is_the_envelope(spec):
    envelope = spec["components"]["schemas"]["Error"]
    assert set(envelope["required"]) == {"error", "request_id"}
    error = resolve(spec, envelope["properties"]["error"])
    assert set(error["required"]) == {"code", "message", "details"}
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            if path.startswith("/oauth2/"):  # OAuth 2.0's own shape (RFC 6749 §5.2)
                media = resolve(spec, response)["content"]["application/json"]
                assert media["schema"] == {"$ref": "#/components/schemas/OAuthError"}, (
                    path,
                    status,
                )
                assert media["examples"], (method, path, status)
                continue
            if (path, status) == ("/health", "503"):  # the envelope around the report
                schema = resolve(spec, resolve(spec, response)["content"]["application/json"])
                schema = resolve(spec, schema["schema"])
                assert {"error", "request_id", "status", "checks"} <= set(schema["required"])
                continue
            media = resolve(spec, response)["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, status)
            assert error_codes_of(spec, response), (method, path, status)


def test_every_operation_lists_the_errors_it_can_answer(spec):
    for method, path, op in operations(spec):
        statuses = set(op["responses"])
        assert "500" in statuses, (method, path)
        if path.startswith("/api/"):
            assert "429" in statuses, (method, path)
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            assert {"400", "413", "415", "422"} <= statuses, (method, path)
        if any("bearerAuth" in requirement for requirement in op["security"]):
            assert "authorization_required" in error_codes_of(spec, op["responses"]["401"])
        if any(p["in"] == "query" for p in op.get("parameters", []) if "$ref" not in p):
            assert "422" in statuses, (method, path)
        if "{" in path:
            assert "404" in statuses, (method, path)


def test_success_responses_have_a_body_schema_and_an_example(spec):
    for method, path, op in operations(spec):
        successes = {s: r for s, r in op["responses"].items() if s[0] in "23"}
        assert successes, (method, path)
        for status, response in successes.items():
            if status in ("204", "302", "304"):
                assert "content" not in response
                continue
            for media_type, media in response["content"].items():
                assert "schema" in media, (method, path, media_type)
                if path not in ("/apispec.json", "/apidocs/"):
                    assert "example" in media or "examples" in media, (method, path)


def test_bodies_come_from_the_marshmallow_schemas(spec):
    schemas = spec["components"]["schemas"]
    for component, schema_cls in [
        ("User", UserSchema),
        ("TokenPair", TokenPairSchema),
        ("Session", SessionSchema),
    ]:
        fields = [f.data_key or name for name, f in schema_cls._declared_fields.items()]
        assert list(schemas[component]["properties"]) == fields
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Login"
    }


def test_the_shapes_api_md_spells_out(spec):
    schemas = spec["components"]["schemas"]
    assert list(schemas["User"]["properties"]) == api_md_object_fields("A user object:")
    assert list(schemas["TokenPair"]["properties"]) == api_md_object_fields(
        "A token pair is returned as"
    )
    session_fields = re.search(r'"sessions": \[\{([^}]*)\}', api_md())
    assert session_fields
    assert list(schemas["Session"]["properties"]) == re.findall(
        r'"([a-z_]+)"', session_fields.group(1)
    )


def security_of(op: dict[str, Any]) -> set[str]:
    return {name for requirement in op["security"] for name in requirement}


def test_operations_that_api_md_gives_an_access_token_declare_bearer_auth(spec):
    for method, path, rest in api_md_rows():
        op = spec["paths"][RENAMED_PATH_PARAMETERS.get(path, path)][method.lower()]
        if "access token" in rest:
            assert op["security"] == [{"bearerAuth": []}], (method, path)
        else:
            assert "bearerAuth" not in security_of(op), (method, path)


@pytest.fixture
def github_client(app, signing_key_pem):
    # A configured provider, so /oauth/<provider>/... reaches its view instead of answering 404.
    return make_app(
        signing_key_pem, GITHUB_CLIENT_ID="docs-test", GITHUB_CLIENT_SECRET="docs-test"
    ).test_client()


def test_operations_that_refuse_a_request_without_credentials_declare_security(spec, github_client):
    for method, path, op in operations(spec):
        some_id = "00000000-0000-4000-8000-000000000000"
        url = path.format(
            provider="github", session_id=some_id, user_id=some_id, client_id="svc_none"
        )
        if path.startswith("/oauth2/"):  # a well-formed request, without client credentials
            form = {"grant_type": "client_credentials", "token": "x"}
            response = github_client.open(url, method=method, data=form)
            assert response.status_code == 401, (path, response.json)
            assert response.json["error"] == "invalid_client"
            assert op["security"] == [{"clientBasic": []}, {}], (method, path)
            continue
        response = github_client.open(url, method=method)
        refused = (
            response.status_code == 401
            and response.json["error"]["code"] == "authorization_required"
        )
        if path == "/metrics":
            continue  # closed only when METRICS_TOKEN is set, by a token that is not a JWT
        assert refused == bool(security_of(op)), (method, path, response.status_code)
        if refused and path != "/api/v1/auth/refresh":
            assert op["security"] == [{"bearerAuth": []}], (method, path)


def test_the_authorize_button_has_a_bearer_scheme(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }


# --- examples ----------------------------------------------------------------------------------


def example_values(spec: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    values = [media["example"]] if "example" in media else []
    values += [resolve(spec, e)["value"] for e in media.get("examples", {}).values()]
    return values


def test_examples_match_their_schemas(spec):
    checked = 0
    for method, path, op in operations(spec):
        media_objects = list(op.get("requestBody", {}).get("content", {}).values())
        for response in op["responses"].values():
            media_objects += list(resolve(spec, response).get("content", {}).values())
        for media in media_objects:
            # The components ride along so that "#/components/..." resolves inside the schema.
            validator = OAS30Validator({**media["schema"], "components": spec["components"]})
            for value in example_values(spec, media):
                errors = [e.message for e in validator.iter_errors(value)]
                assert not errors, (method, path, value, errors)
                checked += 1
    assert checked > 80


# --- serving the document ----------------------------------------------------------------------


def test_the_document_is_built_once_and_served_with_an_etag(signing_key_pem, monkeypatch):
    builds = []
    real_build = apidocs.build_spec

    def counting_build(app: Any) -> dict[str, Any]:
        builds.append(app)
        return real_build(app)

    monkeypatch.setattr(apidocs, "build_spec", counting_build)
    client = make_app(signing_key_pem).test_client()
    first, second = client.get("/apispec.json"), client.get("/apispec.json")
    assert len(builds) == 1
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data()
    etag = first.headers["ETag"]
    assert etag == second.headers["ETag"] and etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == f"public, max-age={apidocs.SPEC_MAX_AGE}"
    # another process (another app) builds the same bytes: caches shared by workers agree
    assert make_app(signing_key_pem).test_client().get("/apispec.json").headers["ETag"] == etag


@pytest.mark.parametrize("if_none_match", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_a_copy_the_client_holds_is_answered_304(client, if_none_match):
    etag = client.get("/apispec.json").headers["ETag"]
    response = client.get(
        "/apispec.json", headers={"If-None-Match": if_none_match.format(etag=etag)}
    )
    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == f"public, max-age={apidocs.SPEC_MAX_AGE}"


def test_a_stale_copy_gets_the_document(client):
    response = client.get("/apispec.json", headers={"If-None-Match": '"stale"'})
    assert response.status_code == 200
    assert response.json["openapi"].startswith("3.0")


def test_the_document_describes_its_own_caching_and_limit(spec):
    op = spec["paths"]["/apispec.json"]["get"]
    assert {"200", "304", "429", "500"} <= set(op["responses"])
    assert {"$ref": "#/components/parameters/IfNoneMatch"} in op["parameters"]
    assert "X-RateLimit-Limit" in op["responses"]["200"]["headers"]


# --- Swagger UI --------------------------------------------------------------------------------


class AssetCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img") and values.get("src"):
            self.assets.append(str(values["src"]))
        if tag == "link" and values.get("href"):
            self.assets.append(str(values["href"]))


def test_swagger_ui_loads_only_assets_this_service_serves(client):
    page = client.get("/apidocs/")
    assert page.status_code == 200
    assert "'unsafe-inline'" in page.headers["Content-Security-Policy"]
    collector = AssetCollector()
    collector.feed(page.get_data(as_text=True))
    assert any(a.endswith("swagger-ui-bundle.js") for a in collector.assets)
    for asset in collector.assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        with client.get(asset) as response:  # a file response: close it
            assert response.status_code == 200, asset
    assert "/apispec.json" in page.get_data(as_text=True)
