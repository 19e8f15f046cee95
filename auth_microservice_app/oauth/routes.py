"""HTTP layer of `/api/v1/oauth`: parse, call a service, serialise."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from ..web.auth import current_claims, require_token
from ..web.request_body import load
from ..web.responses import client_info, no_store, sign_in_body
from . import flows, linking, services
from .blueprint import bp
from .providers import REGISTRY
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

# Only provider names match, so /providers, /accounts, /exchange and /link/confirm never fall
# into <provider>.
PROVIDER = f"<any({', '.join(REGISTRY)}):provider>"

#: Binds a browser sign-in to the browser that started it (login CSRF, ASVS 7.6.2): set by
#: /authorize, required by the callback of a sign-in flow. ``__Secure-``: only an https origin
#: may set it, so a network attacker cannot plant his own value.
BINDING_COOKIE = "__Secure-oauth_binding"
#: The same for providers that answer with a cross-site form POST (Apple), which a
#: ``SameSite=Lax`` cookie does not accompany: this one is ``SameSite=None``. That does not
#: weaken it: the cookie is a nonce that says which browser started a flow, not an authority;
#: a cross-site request carrying it achieves nothing without that flow's state, which only the
#: provider hands back to this same browser. Its own name, so that a Google flow (Lax) in the
#: same browser does not overwrite the attributes of a pending Apple flow's cookie.
FORM_POST_BINDING_COOKIE = "__Secure-oauth_binding_post"
BINDING_PATH = f"{bp.url_prefix}/"


@bp.url_value_preprocessor
def _known_provider(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    # An unknown or unconfigured provider is 404 before any body or token is looked at.
    if values and "provider" in values:
        services.get_provider(values["provider"])


def _redirect(url: str) -> BaseResponse:
    response = redirect(url, 302)
    # The Location carries secrets: state and nonce, or a one-time code.
    response.headers["Cache-Control"] = "no-store"
    return response


def _binding_cookie(provider: str) -> tuple[str, str]:
    """(cookie name, SameSite) of the browser binding for ``provider``'s callbacks."""
    if REGISTRY[provider].callback_form_post:
        return FORM_POST_BINDING_COOKIE, "None"
    return BINDING_COOKIE, "Lax"


@bp.get("/providers")
def providers() -> Response:
    return jsonify({"providers": ProviderSchema(many=True).dump(services.list_providers())})


@bp.get(f"/{PROVIDER}/authorize")
def authorize(provider: str) -> BaseResponse:
    args = AuthorizeQuerySchema().load(request.args)
    cookie, same_site = _binding_cookie(provider)
    binding = flows.browser_binding(request.cookies.get(cookie))
    url = flows.start_authorization(
        provider,
        args["redirect_uri"],
        client_state=args["state"],
        code_challenge=args["code_challenge"],
        browser_binding=binding,
    )
    response = _redirect(url)
    # Set on the response itself: the app's sessions are null (flask_app.StatelessSessions).
    response.set_cookie(
        cookie,
        binding,
        max_age=int(current_app.config["OAUTH_STATE_TTL"]),
        path=BINDING_PATH,
        secure=True,
        httponly=True,
        samesite=same_site,
    )
    return response


@bp.route(f"/{PROVIDER}/callback", methods=["GET", "POST"])
def callback(provider: str) -> BaseResponse:
    # Apple answers with a form POST (response_mode=form_post); the others with a GET.
    params = {**request.args.to_dict(), **request.form.to_dict()}
    binding = request.cookies.get(_binding_cookie(provider)[0])
    return _redirect(flows.complete_authorization(provider, params, browser_binding=binding))


@bp.post("/exchange")
def exchange() -> tuple[Response, int]:
    data = load(ExchangeSchema())
    result = flows.exchange_one_time_code(
        data["code"], client_info(), code_verifier=data["code_verifier"]
    )
    return sign_in_body(result)


@bp.post(f"/{PROVIDER}/token")
def native_token(provider: str) -> tuple[Response, int]:
    data = load(NativeTokenSchema())
    return sign_in_body(flows.sign_in_native(provider, client_info(), **data))


@bp.get("/accounts")
@require_token
def accounts() -> tuple[Response, int]:
    rows = linking.list_accounts(current_claims()["sub"])
    return no_store({"accounts": OAuthAccountSchema(many=True).dump(rows)})


@bp.post(f"/{PROVIDER}/link")
@require_token(fresh=True)  # a stolen, refreshed token must not attach the thief's identity
def link(provider: str) -> tuple[Response, int]:
    data = load(LinkSchema())
    url = flows.start_link(provider, current_claims()["sub"], data["redirect_uri"], data["state"])
    return no_store({"authorization_url": url})


@bp.post("/link/confirm")  # no provider name is "link": PROVIDER never matches it
@require_token(fresh=True)  # only the user who started the link, recently signed in
def link_confirm() -> tuple[Response, int]:
    data = load(LinkConfirmSchema())
    account = linking.confirm_link(data["code"], current_claims()["sub"])
    return no_store(LinkedAccountSchema().dump({"account": account}))


@bp.delete(f"/{PROVIDER}")
@require_token(fresh=True)
def unlink(provider: str) -> tuple[str, int]:
    linking.unlink(provider, current_claims()["sub"])
    return "", 204
