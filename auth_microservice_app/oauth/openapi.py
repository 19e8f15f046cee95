"""The OpenAPI description of ``/api/v1/oauth``: one ``Op`` (``web/openapi.py``) per route, the
bodies the routes build by hand, and their examples (API.md). ``apidocs.py`` assembles it."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, fields

from ..web.openapi import BEARER, EMAIL, SIGN_IN_EXAMPLES, SIGN_IN_RESULT, Op
from .providers import REGISTRY as OAUTH_PROVIDERS
from .schemas import (
    AuthorizeQuerySchema,
    ExchangeSchema,
    LinkConfirmSchema,
    LinkedAccountSchema,
    LinkSchema,
    NativeTokenSchema,
    OAuthAccountSchema,
    ProviderSchema,
)

TAG = "OAuth"
TAG_DESCRIPTION = "Sign in with Google, GitHub and Apple; linked accounts."


# --- bodies the routes build by hand (they nest the real schemas) ------------------------------


class ProviderListSchema(Schema):
    providers = fields.List(fields.Nested(ProviderSchema), required=True)


class OAuthAccountListSchema(Schema):
    accounts = fields.List(fields.Nested(OAuthAccountSchema), required=True)


class AuthorizationUrlSchema(Schema):
    authorization_url = fields.String(required=True)


class OAuthCallbackSchema(Schema):
    """What the provider sends back (Apple posts it as a form); other fields are ignored."""

    class Meta:
        unknown = INCLUDE

    state = fields.String(metadata={"description": "The state this service sent to the provider."})
    code = fields.String()
    error = fields.String()
    id_token = fields.String(metadata={"description": "Apple (form_post)."})
    user = fields.String(metadata={"description": "Apple, first sign-in only: JSON with the name."})


# --- the table --------------------------------------------------------------------------------

REDIRECT = {
    302: {
        "description": "Redirect (the target is in `Location`).",
        "headers": {"Location": {"schema": {"type": "string"}, "required": True}},
    }
}
AUTHORIZE_REDIRECT = {
    302: {
        "description": "Redirect to the provider (the target is in `Location`), setting the "
        "cookie that binds the sign-in to this browser.",
        "headers": {
            "Location": {"schema": {"type": "string"}, "required": True},
            "Set-Cookie": {
                "description": "`__Secure-oauth_binding` (`SameSite=Lax`; Apple: "
                "`__Secure-oauth_binding_post`, `SameSite=None`), `HttpOnly; Secure; "
                "Path=/api/v1/oauth/; Max-Age=` the state lifetime. A browser that already has "
                "one keeps its value.",
                "schema": {"type": "string"},
            },
        },
    }
}
#: Path parameters, by the name the routes give them.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "provider": {
        "description": "An OAuth provider; one that is not configured answers 404.",
        "schema": {"type": "string", "enum": list(OAUTH_PROVIDERS)},
    },
}

#: Flask endpoint -> its operation, or method -> operation where one view serves several methods.
OPERATIONS: dict[str, Op | dict[str, Op]] = {
    "oauth.providers": Op(
        "Configured providers",
        TAG,
        ProviderListSchema,
        no_store=False,
        response_example={"providers": [{"name": "google", "display_name": "Google"}]},
    ),
    "oauth.authorize": Op(
        "Start a browser sign-in",
        TAG,
        None,
        status=302,
        description="Redirects to the provider (with state, nonce and PKCE S256). "
        "`redirect_uri` must be on the allow-list. Optional `code_challenge` with "
        "`code_challenge_method=S256` (PKCE between the client and this service; `plain`, or a "
        "challenge without a method, is 422): `/exchange` then needs the `code_verifier`. "
        "Sets a cookie binding the sign-in to this browser: the callback of a sign-in finished "
        "in another browser signs nobody in. Each call starts a flow kept for 10 minutes: the "
        "per-IP limit is tight (20 a minute by default).",
        query=AuthorizeQuerySchema,
        errors={400: ("bad_request",), 404: ("not_found",), 502: ("upstream_error",)},
        other_responses=AUTHORIZE_REDIRECT,
        no_store=False,
    ),
    "oauth.callback": {
        method: Op(
            "The provider's answer",
            TAG,
            None,
            status=302,
            description="Signs the user in or up, then redirects to the client's `redirect_uri` "
            "with a one-time `code` (or `error`). The callback of a link flow links nothing: it "
            "redirects with a one-time `link_code` for `POST /api/v1/oauth/link/confirm`. The "
            "client's `state` comes back when it sent one. A sign-in callback reached by a "
            "browser without the binding cookie of `/authorize` (another browser's flow) "
            "redirects with `error=invalid_request` and signs nobody in. Apple posts a form.",
            query=OAuthCallbackSchema if method == "GET" else None,
            form=OAuthCallbackSchema if method == "POST" else None,
            errors={400: ("bad_request",), 404: ("not_found",)},
            other_responses=REDIRECT,
            no_store=False,
        )
        for method in ("GET", "POST")
    },
    "oauth.exchange": Op(
        "Trade the one-time code for tokens",
        TAG,
        SIGN_IN_RESULT,
        body=ExchangeSchema,
        description="`code_verifier` is required when `/authorize` was given a `code_challenge`, "
        "and refused otherwise; a missing or wrong verifier is 400 `invalid_token` and spends "
        "the code.",
        errors={400: ("invalid_token",), 403: ("account_disabled", "email_not_verified")},
        request_example={
            "code": "Yk3n8Q0s",
            "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        },
        response_examples=SIGN_IN_EXAMPLES,
    ),
    "oauth.native_token": Op(
        "Native apps: sign in with an id_token or a PKCE code",
        TAG,
        SIGN_IN_RESULT,
        description="`id_token` (Google, Apple), or `code` + `code_verifier` + `redirect_uri`.",
        body=NativeTokenSchema,
        errors={
            400: ("invalid_token",),
            401: ("token_invalid", "token_expired"),
            403: ("account_disabled", "email_not_verified", "oauth_email_unverified"),
            404: ("not_found",),
            409: ("account_exists_unverified", "oauth_already_linked"),
            502: ("upstream_error",),
        },
        request_example={"id_token": "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJnb29nbGUifQ.c2ln"},
        response_examples=SIGN_IN_EXAMPLES,
    ),
    "oauth.accounts": Op(
        "Linked provider accounts",
        TAG,
        OAuthAccountListSchema,
        auth=BEARER,
        errors={403: ("account_disabled",)},
        response_example={
            "accounts": [
                {
                    "provider": "google",
                    "email": EMAIL,
                    "email_verified": True,
                    "linked_at": "2026-12-01T10:00:00Z",
                    "last_login_at": None,
                }
            ]
        },
    ),
    "oauth.link": Op(
        "Start linking a provider to this user",
        TAG,
        AuthorizationUrlSchema,
        description="Open `authorization_url` in the browser. The callback links nothing: it "
        "redirects to `redirect_uri` with a one-time `link_code` (and your `state`), which this "
        "same user confirms with `POST /api/v1/oauth/link/confirm`. Needs a fresh access token "
        "and a verified email.",
        body=LinkSchema,
        body_required=False,
        auth=BEARER,
        errors={
            400: ("bad_request",),
            401: ("fresh_token_required",),
            403: ("account_disabled", "email_not_verified"),
            404: ("not_found",),
            502: ("upstream_error",),
        },
        request_example={"redirect_uri": "https://app.example.com/oauth/done", "state": "x1"},
        response_example={
            "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth?client_id=..."
        },
    ),
    "oauth.link_confirm": Op(
        "Finish linking a provider",
        TAG,
        LinkedAccountSchema,
        description="The `link_code` the callback of a link flow sent to the client, with a "
        "fresh access token of the user who started the link. The code works once and for "
        "60 seconds, and is spent by any answer: another user's token is 403 `forbidden` and "
        "links nothing.",
        body=LinkConfirmSchema,
        auth=BEARER,
        errors={
            400: ("invalid_token",),
            401: ("fresh_token_required",),
            403: ("forbidden", "email_not_verified", "account_disabled"),
            409: ("oauth_already_linked",),
        },
        request_example={"code": "Yk3n8Q0sLm2p"},
        response_example={
            "account": {
                "provider": "google",
                "email": EMAIL,
                "email_verified": True,
                "linked_at": "2026-12-01T10:00:00Z",
                "last_login_at": None,
            }
        },
    ),
    "oauth.unlink": Op(
        "Unlink a provider",
        TAG,
        None,
        status=204,
        description="409 when it is the user's only way to sign in.",
        auth=BEARER,
        errors={
            401: ("fresh_token_required",),
            403: ("account_disabled",),
            404: ("not_found",),
            409: ("last_sign_in_method",),
        },
        no_store=False,
    ),
}
