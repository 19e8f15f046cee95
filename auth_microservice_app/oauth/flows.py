"""OAuth sign-in, sign-up and account linking (Google, GitHub, Apple).

The browser flow: ``start_authorization`` keeps the flow server-side under its ``state`` (the
client's redirect URI; the ``nonce`` and PKCE verifier are derived from the state with a key
only this service holds, so they need no storage) and sends the browser to the provider;
``complete_authorization`` takes the state back (once), swaps the code, verifies the identity,
signs the user in or up, and sends the browser to the client with a one-time ``code`` that
``exchange_one_time_code`` turns into a token pair (or an MFA challenge). A sign-in flow is
bound to the browser that started it (a cookie whose SHA-256 the flow keeps), so a callback URL
from someone else's flow signs nobody in (login CSRF). Native apps skip the browser part with
``sign_in_native``.

Linking rule (account takeover defence): an identity already linked signs its user in; a new
identity whose email matches a local account is linked automatically only when the provider
says the email is verified *and* the local account's email is verified; otherwise it is refused
with ``account_exists_unverified``. Signed-in users with a verified email link any identity
through ``start_link`` and ``confirm_link``: the callback of a link flow links nothing (the
browser that finishes it may not be the initiator's), it hands a one-time ``link_code`` to the
client, which the initiator spends with a fresh access token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app

from .. import audit
from ..audit import Event
from ..errors import (
    AccountDisabled,
    AppError,
    BadRequest,
    EmailNotVerified,
    InvalidLinkToken,
    ValidationFailed,
)
from ..extensions import db
from ..identity import signin
from ..identity.challenges import MfaChallenge
from ..identity.sessions import ClientInfo
from ..identity.signin import SignInResult
from ..models import User
from . import store
from .linking import linking_user, resolve_user, user_by_id
from .providers import (
    OAuthProvider,
    ProviderIdentity,
)
from .services import callback_url, check_redirect_uri, get_provider

logger = logging.getLogger(__name__)


AMR = ["oauth"]

#: What a provider's ``error`` may look like to be passed on to the client (RFC 6749 4.1.2.1).
PROVIDER_ERROR = re.compile(r"^[a-z0-9_]{1,64}$")

#: The ``error`` sent to the client when the cause is unexpected (details go to the log only).
FALLBACK_ERROR = "server_error"

#: A browser binding we could have issued (:func:`browser_binding`); anything else is replaced.
BROWSER_BINDING = re.compile(r"^[A-Za-z0-9_-]{43,128}$")

#: A browser flow as stored under its state (``store.STATE``), in short keys, the empty ones left
#: out: a flow is kept for ``OAUTH_STATE_TTL`` and anyone may start one, so every byte counts.
#: Its nonce and PKCE verifier are not stored at all (:func:`flow_secret`).
FLOW_KEYS = {
    "provider": "p",
    "redirect_uri": "r",
    "client_state": "s",
    "code_challenge": "c",
    "browser_binding": "b",
    "link_user_id": "u",
}

#: Purposes of :func:`flow_secret`.
NONCE, CODE_VERIFIER = "nonce", "code_verifier"


# --- providers -------------------------------------------------------------------------------


def start_authorization(
    provider_name: str,
    redirect_uri: str | None,
    *,
    client_state: str | None = None,
    code_challenge: str | None = None,
    browser_binding: str | None = None,
    link_user_id: str | None = None,
) -> str:
    """Begin a browser flow; returns the provider's authorization URL to redirect to.

    Generates a random ``state`` and derives the flow's ``nonce`` and PKCE verifier from it
    (:func:`flow_secret`); keeps the client's ``redirect_uri`` (and ``client_state``, echoed
    back) under the state for ``OAUTH_STATE_TTL`` seconds. ``code_challenge`` (S256, checked by
    the schema) is the client's own PKCE challenge: it goes with the flow, then with the
    one-time code, which :func:`exchange_one_time_code` then spends only with its verifier.
    ``browser_binding`` (see :func:`browser_binding`) is kept as its SHA-256: the callback of a
    sign-in flow requires the same value. About 110 bytes are stored for a flow without
    a client state, challenge or linking user (:func:`pack_flow`).

    :raises NotFound: the provider is not configured.
    :raises BadRequest: ``redirect_uri`` is missing or not on the allow-list.
    :raises UpstreamError: the provider's discovery document could not be fetched.
    """
    provider = get_provider(provider_name)
    check_redirect_uri(redirect_uri)
    state = secrets.token_urlsafe(32)
    url = provider.authorization_url(
        state,
        flow_secret(CODE_VERIFIER, state),
        redirect_uri=callback_url(provider),
        nonce=flow_secret(NONCE, state),
    )
    flow = {
        "provider": provider.name,
        "redirect_uri": redirect_uri,
        "client_state": client_state,
        "code_challenge": code_challenge,
        "browser_binding": _digest(browser_binding) if browser_binding else None,
        "link_user_id": link_user_id,
    }
    store.put(store.STATE, state, pack_flow(flow), int(current_app.config["OAUTH_STATE_TTL"]))
    return url


def flow_secret(purpose: str, state: str) -> str:
    """The ``nonce`` or the PKCE ``code_verifier`` (``purpose``) of the flow of ``state``.

    HMAC-SHA256 of the purpose and the state under ``SECRET_KEY``, base64url: 43 characters,
    256 bits (RFC 7636 4.1's recommended verifier). Each flow has its own (its state is
    random), and only this service can compute them: the state travels through the browser and
    the provider, the key never does. So they need no storage, and the callback derives the
    same again. A flow started before ``SECRET_KEY`` changed fails at its callback.
    """
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = f"oauth-flow:{purpose}:{state}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def pack_flow(flow: Mapping[str, Any]) -> dict[str, Any]:
    """What is stored of a browser flow: its set fields under :data:`FLOW_KEYS`."""
    return {short: flow[name] for name, short in FLOW_KEYS.items() if flow.get(name) is not None}


def unpack_flow(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The flow :func:`pack_flow` stored, by field name.

    A flow stored by the previous release (full names, its nonce and verifier included, the
    binding digest in hex) comes back as it was, so sign-ins under way at a deploy finish;
    this can go once a release has run for ``OAUTH_STATE_TTL``.
    """
    if "provider" in stored:
        return dict(stored)
    return {name: stored.get(short) for name, short in FLOW_KEYS.items()}


def start_link(
    provider_name: str, user_id: str, redirect_uri: str | None, client_state: str | None = None
) -> str:
    """Begin a browser flow that links the provider's account to the signed-in user.

    :raises NotFound, BadRequest, UpstreamError: as :func:`start_authorization`.
    :raises AccountDisabled, TokenInvalid: the user is disabled or gone.
    :raises EmailNotVerified: the user's email is not verified.
    """
    user = linking_user(user_id)
    return start_authorization(
        provider_name, redirect_uri, client_state=client_state, link_user_id=str(user.id)
    )


def browser_binding(existing: str | None) -> str:
    """The value of the cookie that binds sign-in flows to one browser.

    ``existing`` (the browser's current cookie) when it is a value we could have issued, so
    that two tabs signing in at once share it; otherwise a new random one.
    """
    if existing and BROWSER_BINDING.match(existing):
        return existing
    return secrets.token_urlsafe(32)


def complete_authorization(
    provider_name: str, params: Mapping[str, str], *, browser_binding: str | None = None
) -> str:
    """Finish a browser flow: returns the client URL to redirect the browser to.

    With ``code=<one-time code>`` after a sign-in, ``link_code=<one-time code>`` after a link
    flow (nothing is linked until its initiator calls :func:`confirm_link`), or ``error=<code>``
    when the provider or a rule said no (``access_denied``, ``invalid_token``,
    ``account_exists_unverified``, ...). The client's ``state`` is echoed back when it sent one.

    ``browser_binding`` is this browser's binding cookie: a sign-in flow started by another
    browser (or none) ends with ``error=invalid_request`` and signs nobody in. A link flow
    needs none (it was started by an XHR; :func:`confirm_link` checks who finishes it).

    :raises NotFound: the provider is not configured.
    :raises BadRequest: the ``state`` is missing, unknown, used or expired (so there is no
        client redirect URI to answer to).
    """
    provider = get_provider(provider_name)
    state = params.get("state")
    stored = store.take(store.STATE, state) if state else None
    if state is None or stored is None:
        raise BadRequest("This sign-in attempt is unknown or has expired. Start again.")
    flow = unpack_flow(stored)
    try:
        outcome = _refusal(provider, flow, params, browser_binding) or _finish_flow(
            provider, state, flow, params
        )
    except AppError as error:
        db.session.rollback()
        audit.record(Event.OAUTH_FAILED, provider=provider.name, reason=error.code)
        outcome = {"error": error.code}
    except Exception:
        # The browser goes back to the client whatever happened; the trace goes to the log.
        db.session.rollback()
        logger.exception("oauth callback failed", extra={"provider": provider.name})
        outcome = {"error": FALLBACK_ERROR}
    return client_redirect(flow["redirect_uri"], outcome, flow.get("client_state"))


def _refusal(
    provider: OAuthProvider,
    flow: Mapping[str, Any],
    params: Mapping[str, str],
    browser_binding: str | None,
) -> dict[str, str] | None:
    """The client's answer when the callback must go no further, else None."""
    if flow.get("provider") != provider.name:
        return {"error": "invalid_request"}
    if not flow.get("link_user_id") and not _same_browser(
        flow.get("browser_binding"), browser_binding
    ):
        # Checked before the provider's code is redeemed: a callback URL lifted from another
        # browser's flow (login CSRF) gets nowhere near a session.
        audit.record(Event.OAUTH_FAILED, provider=provider.name, reason="browser_mismatch")
        return {"error": "invalid_request"}
    if params.get("error"):
        error = params["error"]
        audit.record(Event.OAUTH_FAILED, provider=provider.name, reason="provider_error")
        return {"error": error if PROVIDER_ERROR.match(error) else FALLBACK_ERROR}
    return None


def _same_browser(expected: Any, presented: str | None) -> bool:
    if not isinstance(expected, str) or not expected or not presented:
        return False
    # a flow of the previous release keeps the digest in hex (see unpack_flow)
    computed = hashlib.sha256(presented.encode()).hexdigest() if len(expected) == 64 else None
    return hmac.compare_digest((computed or _digest(presented)).encode(), expected.encode())


def _digest(secret: str) -> str:
    """SHA-256, base64url (43 characters)."""
    digest = hashlib.sha256(secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _finish_flow(
    provider: OAuthProvider, state: str, flow: Mapping[str, Any], params: Mapping[str, str]
) -> dict[str, str]:
    code = params.get("code")
    if not code:
        return {"error": "invalid_request"}
    verifier = flow.get("code_verifier") or flow_secret(CODE_VERIFIER, state)
    token = provider.exchange_code(code, verifier, redirect_uri=callback_url(provider))
    nonce = flow.get("nonce") or flow_secret(NONCE, state)
    identity = provider.fetch_identity(token, nonce=nonce, profile=params)
    if flow.get("link_user_id"):
        return {"link_code": _hold_link(str(flow["link_user_id"]), identity)}
    user = resolve_user(identity)
    one_time_code = secrets.token_urlsafe(32)
    payload = {
        "user_id": str(user.id),
        "provider": provider.name,
        "code_challenge": flow.get("code_challenge"),
    }
    store.put(store.CODE, one_time_code, payload, int(current_app.config["OAUTH_CODE_TTL"]))
    return {"code": one_time_code}


def _hold_link(user_id: str, identity: ProviderIdentity) -> str:
    # Whoever finished the flow in their browser, only the initiator may link the identity
    # (confirm_link); until then it waits under a one-time code. Nothing is recorded against
    # the initiator here: this request's address and user agent are the completing browser's.
    link_code = secrets.token_urlsafe(32)
    pending = {
        "user_id": user_id,
        "provider": identity.provider,
        "subject": identity.subject,
        "email": identity.email,
        "email_verified": identity.email_verified,
        "name": identity.name,
    }
    store.put(store.LINK, link_code, pending, int(current_app.config["OAUTH_CODE_TTL"]))
    audit.record(Event.OAUTH_LINK_PENDING, provider=identity.provider)
    return link_code


def client_redirect(redirect_uri: str, params: Mapping[str, str], client_state: Any) -> str:
    """``redirect_uri`` with ``params`` (and the client's ``state``) added to its query."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    if isinstance(client_state, str) and client_state:
        query.append(("state", client_state))
    return urlunsplit(parts._replace(query=urlencode(query)))


def exchange_one_time_code(
    code: str, client: ClientInfo, *, code_verifier: str | None = None
) -> SignInResult:
    """Spend a one-time code from the callback: a token pair, or the user's MFA challenge.

    The code is spent by the first attempt, whatever the verifier: a wrong one cannot be
    followed by another guess.

    :raises InvalidLinkToken: unknown, used or expired (after ``OAUTH_CODE_TTL`` seconds); or
        its flow had a ``code_challenge`` and ``code_verifier`` is missing or does not match
        it; or it had none and a ``code_verifier`` was sent.
    :raises AccountDisabled, EmailNotVerified: see :func:`sign_in_user`.
    """
    payload = store.take(store.CODE, code)
    if payload is None:
        raise InvalidLinkToken()
    if not _verifier_matches(payload.get("code_challenge"), code_verifier):
        audit.record(Event.OAUTH_FAILED, provider=payload.get("provider"), reason="pkce_mismatch")
        raise InvalidLinkToken()
    user = user_by_id(payload.get("user_id"))
    if user is None:
        raise InvalidLinkToken()
    return sign_in_user(user, str(payload.get("provider")), client)


def _verifier_matches(challenge: Any, verifier: str | None) -> bool:
    # RFC 7636 4.6, S256 only. A verifier for a code issued without a challenge is refused as
    # well: the client believes in a protection the code never had.
    if not challenge:
        return verifier is None
    if verifier is None:
        return False
    digest = hashlib.sha256(verifier.encode()).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(computed.encode(), str(challenge).encode())


# --- native apps -----------------------------------------------------------------------------


def sign_in_native(
    provider_name: str,
    client: ClientInfo,
    *,
    id_token: str | None = None,
    nonce: str | None = None,
    code: str | None = None,
    code_verifier: str | None = None,
    redirect_uri: str | None = None,
    name: str | None = None,
) -> SignInResult:
    """Sign a native app's user in or up from an id_token, or from a code it got with PKCE.

    ``nonce``, when given, must equal the id_token's. ``name`` is used only if the account is
    created (Apple gives apps the name, never the id_token).

    :raises NotFound: the provider is not configured.
    :raises ValidationFailed: id_token sent to a provider without id_tokens (GitHub).
    :raises TokenInvalid, TokenExpired: the id_token failed verification.
    :raises InvalidLinkToken: the provider refused the code, verifier or redirect URI.
    :raises OAuthLinkRefused, OAuthEmailUnavailable, AccountDisabled: see :func:`resolve_user`.
    """
    provider = get_provider(provider_name)
    if id_token:
        identity = provider.verify_id_token(id_token, nonce=nonce)
    elif code and code_verifier and redirect_uri:
        token = provider.exchange_code(code, code_verifier, redirect_uri=redirect_uri)
        identity = provider.fetch_identity(token, nonce=nonce)
    else:
        raise ValidationFailed(
            "Send id_token, or code with code_verifier and redirect_uri.",
            details={"_schema": ["Send id_token, or code with code_verifier and redirect_uri."]},
        )
    if name and not identity.name:
        identity = replace(identity, name=name)
    return sign_in_user(resolve_user(identity), provider.name, client)


def sign_in_user(user: User, provider_name: str, client: ClientInfo) -> SignInResult:
    """Finish an OAuth sign-in through :func:`..identity.signin.sign_in` (``amr`` ``["oauth"]``).

    :raises AccountDisabled: the account is disabled.
    :raises EmailNotVerified: ``REQUIRE_EMAIL_VERIFICATION`` is on and the email is not.
    """
    if not user.is_active:
        raise AccountDisabled()
    if current_app.config["REQUIRE_EMAIL_VERIFICATION"] and not user.email_verified:
        raise EmailNotVerified()
    result = signin.sign_in(user, client, amr=list(AMR))
    audit.record(
        Event.OAUTH_SIGN_IN,
        user_id=user.id,
        provider=provider_name,
        mfa_required=isinstance(result, MfaChallenge),
    )
    return result


# --- linking rules ---------------------------------------------------------------------------
