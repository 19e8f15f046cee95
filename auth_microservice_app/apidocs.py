"""The OpenAPI 3 document (``/apispec.json``) and Swagger UI (``/apidocs/``), served by flasgger.

One source of truth per fact:
- request and response bodies are the marshmallow schemas the routes use, turned into
  ``components/schemas`` by apispec's MarshmallowPlugin (the few bodies the routes build by hand,
  such as ``{"user": {...}}`` or the error envelope, are small schemas beside each table that
  nest the real ones);
- what a schema cannot say (summary, tag, statuses, auth, examples) is one
  :class:`~.web.openapi.Op` per Flask endpoint, in a table beside each blueprint:
  ``service_openapi.py`` (probes, metrics, key discovery), ``auth/openapi.py``,
  ``two_factor/openapi.py``, ``oauth/openapi.py``; this module adds its own two routes and
  assembles them into :data:`OPERATIONS`;
- the paths are ``app.url_map``: a route missing from the tables is reported by
  :func:`undocumented_endpoints` (logged at start-up, and a test fails), never silently dropped.

Every operation answers its errors in the envelope of ``errors.py``; which statuses it lists
follows from its entry (see :mod:`.web.openapi`).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flasgger import Swagger
from flask import Flask, Response, request
from jinja2 import BaseLoader, ChoiceLoader, DictLoader
from marshmallow import Schema
from marshmallow.fields import Field
from werkzeug.routing import Rule
from werkzeug.wrappers import Response as BaseResponse

from . import service_openapi
from .admin import openapi as admin_openapi
from .admin.schemas import Cursor
from .auth import openapi as auth_openapi
from .auth.schemas import SessionCursor
from .errors import HTTP_CODES, AppError
from .oauth import openapi as oauth_openapi
from .oauth2 import openapi as oauth2_openapi
from .two_factor import openapi as two_factor_openapi
from .web.fields import Email, SafeString, UTCTime
from .web.openapi import (
    SHARED_ERRORS,
    VALIDATION_DETAILS,
    ErrorSchema,
    Op,
    add_components,
    error_response_object,
    openapi_path,
    operation,
)

logger = logging.getLogger(__name__)

OPENAPI_VERSION = "3.0.3"  # flasgger's Swagger UI (3.x) renders OpenAPI 3.0, not 3.1
SPEC_ROUTE = "/apispec.json"
#: Seconds a client or proxy may reuse the document without asking again.
SPEC_MAX_AGE = 300
DOCS_ROUTE = "/apidocs/"
TITLE = "Auth service API"
DESCRIPTION = """\
Accounts, sessions, asymmetric JWTs (verify them offline with `/.well-known/jwks.json`),
two-factor authentication and OAuth sign-in.

* JSON in, JSON out. A body that is not JSON gets 415, malformed JSON 400, a body over the
  size limit (64 KiB by default) 413, a body that breaks its schema 422.
* Every error has one shape: `{"error": {"code", "message", "details"}, "request_id"}`;
  branch on `code`, show `message` (but `/oauth2`, which speaks OAuth 2.0:
  `{"error", "error_description"}`). Every response carries `X-Request-ID`.
* Operations marked with a lock need an access token: use **Authorize** with the
  `access_token` of `POST /api/v1/auth/login`.
* Every `/api/` operation is rate limited (`X-RateLimit-*` headers; a 429 adds `Retry-After`).
"""

#: The tables, in the order of the document's tags.
SECTIONS = (
    service_openapi,
    auth_openapi,
    two_factor_openapi,
    oauth_openapi,
    oauth2_openapi,
    admin_openapi,
)
TAGS = [{"name": section.TAG, "description": section.TAG_DESCRIPTION} for section in SECTIONS]

#: Routes that are tooling, not API operations (with the reason they are left out).
NOT_OPERATIONS = {
    "static": "Flask's static folder; the service serves no files",
    "flasgger.static": "Swagger UI's own JavaScript and CSS",
    "flasgger.oauth_redirect": "Swagger UI's OAuth2 redirect page (unused: bearer tokens only)",
    "flasgger.<lambda>": "/apidocs/index.html, a redirect to /apidocs/",
}
IGNORED_METHODS = {"HEAD", "OPTIONS"}

#: This document and its Swagger UI: the two routes this module serves.
DOCUMENT_OPERATIONS: dict[str, Op | dict[str, Op]] = {
    "flasgger.apispec": Op(
        "This OpenAPI document",
        service_openapi.TAG,
        {"type": "object"},
        description=f"Built once per process; cached for {SPEC_MAX_AGE // 60} minutes, with "
        "ETag. Rate limited per IP.",
        headers=("IfNoneMatch",),
        no_store=False,
        rate_limited=True,
        other_responses={304: {"description": "Not modified (`If-None-Match` matched)."}},
    ),
    "flasgger.apidocs": Op(
        "Swagger UI on this document",
        service_openapi.TAG,
        {"type": "string"},
        media_type="text/html",
        no_store=False,
    ),
}


def _merge(*tables: dict[str, Any]) -> dict[str, Any]:
    """The tables as one; an endpoint (or path parameter) is described in one place only."""
    merged: dict[str, Any] = {}
    for table in tables:
        twice = merged.keys() & table.keys()
        if twice:
            raise ValueError(f"described in two tables: {sorted(twice)}")
        merged.update(table)
    return merged


#: Flask endpoint -> its operation, or method -> operation where one view serves several methods;
#: in the order of the document's paths (API.md's).
OPERATIONS: dict[str, Op | dict[str, Op]] = _merge(
    service_openapi.PROBES,
    DOCUMENT_OPERATIONS,
    service_openapi.DISCOVERY,
    auth_openapi.OPERATIONS,
    two_factor_openapi.OPERATIONS,
    oauth_openapi.OPERATIONS,
    oauth2_openapi.OPERATIONS,
    admin_openapi.OPERATIONS,
)
#: Path parameters, by the name the routes give them.
PATH_PARAMETERS: dict[str, dict[str, Any]] = _merge(
    auth_openapi.PATH_PARAMETERS, oauth_openapi.PATH_PARAMETERS, admin_openapi.PATH_PARAMETERS
)


# --- what follows from the tables -----------------------------------------------------------


def _error_messages() -> dict[str, str]:
    """code -> default message, from the error classes themselves (for the examples)."""
    messages = {code: message for code, message in HTTP_CODES.values()}
    pending: list[type[AppError]] = [AppError]
    while pending:
        cls = pending.pop()
        messages.setdefault(cls.code, cls.message)
        pending.extend(cls.__subclasses__())
    return messages


def _error_examples(document: dict[str, Any]) -> dict[str, Any]:
    """One example envelope per error code the document uses (``components/examples``)."""
    messages = _error_messages()
    used = sorted(set(re.findall(r'"#/components/examples/([^"]+)"', _dump(document))))
    return {
        code: {
            "summary": messages.get(code) or code,
            "value": {
                "error": {
                    "code": code,
                    "message": messages.get(code, ""),
                    "details": VALIDATION_DETAILS if code == "validation_error" else {},
                },
                "request_id": "6f1c0e2a9b7d4c3e8f5a1b2c3d4e5f60",
            },
        }
        for code in used
    }


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    parameters = []
    for name in sorted(rule.arguments):
        spec = PATH_PARAMETERS.get(name, {"schema": {"type": "string"}})
        parameters.append({"in": "path", "name": name, "required": True, **spec})
    return parameters


def operations_of(endpoint: str, methods: list[str]) -> dict[str, Op]:
    entry = OPERATIONS[endpoint]
    if isinstance(entry, Op):
        return {method: entry for method in methods}
    return {method: entry[method] for method in methods if method in entry}


def _rules(app: Flask) -> dict[str, list[Rule]]:
    rules: dict[str, list[Rule]] = {}
    for rule in app.url_map.iter_rules():
        rules.setdefault(rule.endpoint, []).append(rule)
    return rules


def _methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - IGNORED_METHODS)


def undocumented_endpoints(app: Flask) -> list[str]:
    """Routes of ``app`` that :data:`OPERATIONS` does not describe (``endpoint METHOD``)."""
    missing = []
    for endpoint, rules in _rules(app).items():
        if endpoint in NOT_OPERATIONS:
            continue
        for rule in rules:
            documented = operations_of(endpoint, _methods(rule)) if endpoint in OPERATIONS else {}
            missing += [f"{endpoint} {m}" for m in _methods(rule) if m not in documented]
    return sorted(missing)


def stale_entries(app: Flask) -> list[str]:
    """Entries of :data:`OPERATIONS` that name no route of ``app``."""
    rules = _rules(app)
    stale = []
    for endpoint, entry in OPERATIONS.items():
        served = {m for rule in rules.get(endpoint, []) for m in _methods(rule)}
        wanted = {"*"} if isinstance(entry, Op) else set(entry)
        if not served:
            stale.append(endpoint)
        elif wanted != {"*"}:
            stale += [f"{endpoint} {m}" for m in sorted(wanted - served)]
    return stale


# --- building the document ---------------------------------------------------------------------


#: The schemas of these modules are named with a prefix (``StatusSchema`` -> ``TwoFactorStatus``);
#: any other schema, such as the bodies beside a table, as it is declared.
COMPONENT_PREFIXES = {
    f"{__package__}.two_factor.schemas": "TwoFactor",
    f"{__package__}.oauth.schemas": "OAuth",
    f"{__package__}.oauth2.openapi": "OAuth2",
    f"{__package__}.admin.schemas": "Admin",
}


def _component_name(schema: type[Schema] | Schema) -> str:
    """``two_factor.schemas.StatusSchema`` -> ``TwoFactorStatus``: unique and readable."""
    resolved = resolve_schema_cls(schema)
    cls = resolved[0] if isinstance(resolved, list) else resolved
    name = cls.__name__.removesuffix("Schema")
    prefix = COMPONENT_PREFIXES.get(cls.__module__, "")
    return name if name.startswith(prefix) else prefix + name


def _string_bounds(self: Any, field: Field, **_kwargs: Any) -> dict[str, Any]:
    """SafeString keeps its bounds as attributes, not validators: publish them."""
    if not isinstance(field, SafeString):
        return {}
    bounds: dict[str, Any] = {"maxLength": field.max_length}
    if field.min_length:
        bounds["minLength"] = field.min_length
    if isinstance(field, Email):
        bounds["format"] = "email"
    return bounds


def _responses_fill_every_field(document: dict[str, Any]) -> None:
    """The code's dump schemas declare no ``required`` (dumping ignores it), yet they write every
    field they list. A component used only in responses and declaring nothing required is
    therefore published with every property required."""
    components = document["components"]["schemas"]
    refs = re.compile(r'"#/components/schemas/([^"]+)"')

    def reachable(start: Any) -> set[str]:
        found: set[str] = set()
        pending = set(refs.findall(_dump(start)))
        while pending:
            name = pending.pop()
            if name not in found:
                found.add(name)
                pending |= set(refs.findall(_dump(components[name])))
        return found

    operations = [
        op for item in document["paths"].values() for op in item.values() if isinstance(op, dict)
    ]
    requested = reachable([[op.get("requestBody"), op.get("parameters")] for op in operations])
    answered = reachable([op["responses"] for op in operations])
    for name in sorted(answered - requested):
        schema = components[name]
        if "required" not in schema and schema.get("properties"):
            schema["required"] = list(schema["properties"])


def _dump(value: Any) -> str:
    return json.dumps(value, default=str)


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s documented routes, as a dict."""
    plugin = MarshmallowPlugin(schema_name_resolver=_component_name)
    spec = APISpec(
        title=TITLE,
        version=_version(),
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": DESCRIPTION},
        servers=[{"url": "/"}],
        tags=TAGS,
    )
    assert plugin.converter is not None  # noqa: S101 - set by APISpec(plugins=...)
    plugin.converter.add_attribute_function(_string_bounds)
    plugin.map_to_openapi_type(UTCTime, "string", "date-time")
    plugin.map_to_openapi_type(SessionCursor, "string", None)
    plugin.map_to_openapi_type(Cursor, "string", None)
    add_components(spec)
    spec.components.schema(_component_name(ErrorSchema), schema=ErrorSchema)
    for (status, codes), name in SHARED_ERRORS.items():
        spec.components.response(name, error_response_object(status, codes))
    for path, item in _path_items(app):
        spec.path(path=path, **item)
    document = spec.to_dict()
    document["components"]["examples"] = _error_examples(document)
    _responses_fill_every_field(document)
    return document


def _path_items(app: Flask) -> Iterator[tuple[str, dict[str, Any]]]:
    rules = _rules(app)
    for endpoint in OPERATIONS:
        for rule in rules.get(endpoint, []):
            methods = _methods(rule)
            ops = operations_of(endpoint, methods)
            # deepcopy: apispec resolves schemas in place, and the table serves every app
            yield (
                openapi_path(rule),
                copy.deepcopy(
                    {
                        "operations": {
                            method.lower(): operation(
                                endpoint, method, rule, op, several=len(ops) > 1
                            )
                            for method, op in ops.items()
                        },
                        "parameters": _path_parameters(rule),
                    }
                ),
            )


def _version() -> str:
    try:
        return importlib.metadata.version("auth-microservice")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


# --- serving it --------------------------------------------------------------------------------


_BUILD_LOCK = threading.Lock()


@dataclass(frozen=True)
class ServedSpec:
    """The document as served: its JSON bytes and their (strong) entity tag."""

    body: bytes
    etag: str


class _Swagger(Swagger):
    """flasgger serving our document instead of one parsed from view docstrings.

    The document is built and encoded once per app, on first use (most apps, such as tests
    and workers, never serve it), under a lock so that a burst of first requests builds it
    once; every request then gets the same bytes, or a 304 for a copy it holds.
    """

    def get_apispecs(self, endpoint: str = "apispec") -> dict[str, Any]:
        document: dict[str, Any] | None = self.app.extensions.get("apispec")
        if document is None:
            with _BUILD_LOCK:
                document = self.app.extensions.get("apispec")
                if document is None:
                    document = self.app.extensions["apispec"] = build_spec(self.app)
        return document

    def served(self) -> ServedSpec:
        cached: ServedSpec | None = self.app.extensions.get("apispec_served")
        if cached is None:
            # Not flasgger's jsonify: the app's JSON provider sorts keys, and the table's order
            # (fields as the schemas declare them, paths as API.md lists them) reads better.
            body = json.dumps(self.get_apispecs()).encode()
            etag = hashlib.sha256(body).hexdigest()[:32]
            cached = self.app.extensions["apispec_served"] = ServedSpec(body, etag)
        return cached

    def serve(self) -> BaseResponse:
        spec = self.served()
        response = Response(spec.body, mimetype="application/json")
        response.set_etag(spec.etag)
        response.headers["Cache-Control"] = f"public, max-age={SPEC_MAX_AGE}"
        return response.make_conditional(request)


FLASGGER_CONFIG: dict[str, Any] = {
    "headers": [],
    "specs": [{"endpoint": "apispec", "route": SPEC_ROUTE}],
    "static_url_path": "/flasgger_static",
    "specs_route": DOCS_ROUTE,
    "oauth_redirect": "/apidocs/oauth2-redirect.html",  # under /apidocs: the docs CSP applies
    "swagger_ui": True,
    "uiversion": 3,
    "openapi": OPENAPI_VERSION,
    "title": TITLE,
    "hide_top_bar": True,
    "auth": {},  # flasgger renders this into `ui.initOAuth(...)`; None would be a JS error
    "ui_params": {"displayRequestDuration": True, "docExpansion": "list"},
}


def _self_hosted_templates(app: Flask) -> None:
    """flasgger's page head loads Google Fonts; the docs must load nothing from elsewhere."""
    blueprint = app.blueprints["flasgger"]
    original: BaseLoader | None = blueprint.jinja_loader
    assert original is not None  # noqa: S101 - flasgger registers its templates folder
    head = Path(blueprint.root_path, blueprint.template_folder or "", "flasgger", "head.html")
    text = re.sub(r"<link[^>]*fonts\.googleapis\.com[^>]*>\s*", "", head.read_text("utf-8"))
    blueprint.jinja_loader = ChoiceLoader([DictLoader({"flasgger/head.html": text}), original])


def init_app(app: Flask) -> None:
    """Serve ``/apispec.json`` and ``/apidocs/`` (call after every blueprint is registered)."""
    swagger = _Swagger(app, config=dict(FLASGGER_CONFIG), merge=False)
    app.view_functions["flasgger.apispec"] = swagger.serve
    _self_hosted_templates(app)
    missing, stale = undocumented_endpoints(app), stale_entries(app)
    if missing or stale:
        logger.warning(
            "API documentation out of date", extra={"undocumented": missing, "stale": stale}
        )
