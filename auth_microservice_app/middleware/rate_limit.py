"""Rate limits per endpoint, per client and per target account (Flask-Limiter, moving window).

One Limiter per app (Flask-Limiter keeps its storage on the instance, and tests build several
apps). Limits are attached to the app's own view functions after the blueprints are registered,
so the table below is the single place that says what is limited, by what, and how much.

Three rules keep one client from spending anyone else's budget:
- a client is its IP, and an IPv6 client its /64 (one host hands out a whole /64);
- key functions never raise: Flask-Limiter takes any exception while it evaluates a limit for a
  storage outage and falls back to process memory, so a body it could not read (too large, not
  JSON) would switch the limits off. An unreadable body keys on the client instead;
- a per-account login budget counts failed credential checks only, after validation: ten
  malformed requests cost the owner nothing. (Per-address mail budgets are not limits here:
  ``mail/budgets.py`` spends them after validation and answers 202 when they are spent.)

When Redis is down, Flask-Limiter counts in process memory instead (never a 500), in a store
bounded to ``RATELIMIT_FALLBACK_MAX_KEYS`` keys.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from .. import audit
from ..audit import Event
from ..errors import RateLimited
from ..utils.addresses import email_key

KeyFunc = Callable[[], str]


def client_ip() -> str:
    """The client: its IP, or for IPv6 its /64.

    ProxyFix (``TRUSTED_PROXIES``) has already replaced ``remote_addr`` when proxies are
    trusted; a raw ``X-Forwarded-For`` is never read here.
    """
    address = get_remote_address() or ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"ip:{address[:64]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"ip:{ip.ipv4_mapped}"
        return f"ip6:{ipaddress.IPv6Network((ip, 64), strict=False).network_address}/64"
    return f"ip:{ip}"


def never_raises(key_func: KeyFunc) -> KeyFunc:
    """``key_func``, falling back to the client when it fails for any reason."""

    @functools.wraps(key_func)
    def safe() -> str:
        try:
            return key_func()
        except Exception:  # noqa: BLE001 - an exception here would switch the limits off
            return client_ip()

    return safe


def _body_field(name: str) -> str:
    """A string field of the JSON body, or "" when the body cannot (or need not) be read."""
    length = request.content_length
    if length is None or length > (current_app.config.get("MAX_CONTENT_LENGTH") or 0):
        return ""  # too large (a 413 follows) or streamed: never read it here
    data = request.get_json(silent=True, cache=True)
    value = data.get(name) if isinstance(data, dict) else None
    return value.strip() if isinstance(value, str) else ""


def _hashed(prefix: str, value: str) -> str:
    return prefix + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@never_raises
def account_from_email() -> str:
    """The account the request targets, hashed: emails never become Redis keys.

    Keyed on :func:`..utils.addresses.email_key`, the same normalisation as the account lookup,
    so no other spelling of one address (letter case, full-width letters, ``。``) buys a
    fresh budget.
    """
    email = _body_field("email")
    return _hashed("acct:", email_key(email)) if email else client_ip()


@never_raises
def account_from_mfa_token() -> str:
    token = _body_field("mfa_token")
    return _hashed("mfa:", token) if token else client_ip()


@never_raises
def service_client() -> str:
    """The service client an ``/oauth2`` request names (HTTP Basic or the form), hashed.

    Named, not yet authenticated: a wrong secret spends that client's budget, which is why
    failed authentications also count per IP (``RATELIMIT_LOGIN``).
    """
    client_id = ""
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        client_id = unquote(decoded.partition(":")[0])
    elif request.content_length and request.content_length <= (
        current_app.config.get("MAX_CONTENT_LENGTH") or 0
    ):
        client_id = request.form.get("client_id", "")
    return _hashed("svc:", client_id) if client_id else client_ip()


def failed_credentials(response: Response) -> bool:
    """Whether the answer was a failed credential check (wrong password, unknown account)."""
    return response.status_code == 401


def _limit(setting: str) -> Callable[[], str]:
    return lambda: str(current_app.config[setting])


@dataclass(frozen=True)
class Limit:
    setting: str
    key_func: KeyFunc = client_ip
    #: count only the requests whose response this accepts (None: every request)
    deduct_when: Callable[[Response], bool] | None = None


#: endpoint -> every limit the service enforces on it beyond the per-client ones.
ENDPOINT_LIMITS: dict[str, list[Limit]] = {
    "auth.login": [
        Limit("RATELIMIT_LOGIN"),
        Limit("RATELIMIT_LOGIN", account_from_email, deduct_when=failed_credentials),
    ],
    "auth.register": [Limit("RATELIMIT_REGISTER")],
    "auth.refresh": [Limit("RATELIMIT_REFRESH")],
    "auth.verify_email_resend": [Limit("RATELIMIT_EMAIL")],
    "auth.password_forgot": [Limit("RATELIMIT_EMAIL")],
    "auth.magic_link": [Limit("RATELIMIT_EMAIL")],
    # one-time codes and provider tokens are guessed or replayed at these three
    "oauth.exchange": [Limit("RATELIMIT_LOGIN")],
    "oauth.link_confirm": [Limit("RATELIMIT_LOGIN")],
    "oauth.native_token": [Limit("RATELIMIT_LOGIN")],
    # each starts a flow that Redis keeps for OAUTH_STATE_TTL: a tight budget per IP
    "oauth.authorize": [Limit("RATELIMIT_OAUTH_AUTHORIZE")],
    "oauth.link": [Limit("RATELIMIT_OAUTH_AUTHORIZE")],
    "two_factor.verify": [Limit("RATELIMIT_2FA"), Limit("RATELIMIT_2FA", account_from_mfa_token)],
    # per service client; failed client authentications also per IP
    "oauth2.token": [
        Limit("RATELIMIT_OAUTH2_TOKEN", service_client),
        Limit("RATELIMIT_LOGIN", deduct_when=failed_credentials),
    ],
    "oauth2.revoke": [
        Limit("RATELIMIT_OAUTH2_TOKEN", service_client),
        Limit("RATELIMIT_LOGIN", deduct_when=failed_credentials),
    ],
    "oauth2.introspect": [
        Limit("RATELIMIT_OAUTH2_INTROSPECT", service_client),
        Limit("RATELIMIT_LOGIN", deduct_when=failed_credentials),
    ],
    # a megabyte-sized document (served from memory, but bandwidth is shared)
    "flasgger.apispec": [Limit("RATELIMIT_APISPEC")],
}
#: Paths that other services and probes call often and that hold nothing to guess; Swagger
#: UI's page and static files (the document it loads, /apispec.json, is limited above); the
#: service endpoints, limited per client above (a fleet of services may share one egress IP).
EXEMPT_PREFIXES = (
    "/oauth2/",
    "/health",
    "/metrics",
    "/.well-known/",
    "/apidocs",
    "/flasgger_static",
)


def _exempt() -> bool:
    return request.path.startswith(EXEMPT_PREFIXES)


def _on_breach(limit: RequestLimit) -> None:
    g.rate_limited = True
    audit.record(Event.RATE_LIMITED, endpoint=request.endpoint, limit=str(limit.limit))


class BoundedMemoryStorage(MemoryStorage):
    """Flask-Limiter's in-memory fallback, bounded: at most ``max_keys`` counters.

    The stock store never forgets a key whose window emptied, and its sweep walks them all on
    every new hit: a Redis outage under a spray of client IPs grows it without end. Emptied keys
    go at each sweep here, and past ``max_keys`` the oldest go first.
    """

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        super().__init__()

    def _MemoryStorage__expire_events(self) -> None:  # noqa: N802 - replaces the private sweep
        super()._MemoryStorage__expire_events()  # type: ignore[misc]
        for key in [key for key, entries in list(self.events.items()) if not entries]:
            self.events.pop(key, None)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        acquired = bool(super().acquire_entry(key, limit, expiry, amount))
        self._bound()
        return acquired

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        count = int(super().incr(key, expiry, amount))
        self._bound()
        return count

    def _bound(self) -> None:
        for table in (self.events, self.storage):
            excess = len(table) - self.max_keys
            for key in list(itertools.islice(iter(table), max(excess, 0))):
                table.pop(key, None)
                self.expirations.pop(key, None)

    @property
    def size(self) -> int:
        return len(self.events) + len(self.storage)


def init_app(app: Flask) -> Limiter:
    """Create this app's limiter and attach the endpoint limits (call after the blueprints)."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    limiter = Limiter(
        key_func=client_ip,
        app=None,
        default_limits=[_limit("RATELIMIT_DEFAULT")],
        default_limits_exempt_when=_exempt,
        # every request of one client counts here, whatever endpoint it asks for
        application_limits=[_limit("RATELIMIT_PER_CLIENT")],
        application_limits_exempt_when=_exempt,
        strategy="moving-window",
        headers_enabled=True,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        storage_options={"socket_timeout": app.config["REDIS_SOCKET_TIMEOUT"]}
        if app.config["RATELIMIT_STORAGE_URI"].startswith("redis")
        else {},
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        key_prefix="auth:rl",
        on_breach=_on_breach,
        enabled=app.config["RATELIMIT_ENABLED"],
    )
    # registered before the limiter's own hook, so it runs after it (Flask runs them reversed)
    app.after_request(_keep_our_retry_after)
    limiter.init_app(app)
    _bound_the_fallback(limiter, int(app.config["RATELIMIT_FALLBACK_MAX_KEYS"]))
    app.before_request(_limit_unrouted(limiter))
    for endpoint, limits in ENDPOINT_LIMITS.items():
        view: Any = app.view_functions.get(endpoint)
        if view is None:
            continue
        for number, limit in enumerate(limits):
            view = limiter.limit(
                _limit(limit.setting),
                key_func=never_raises(limit.key_func),
                scope=f"{endpoint}:{limit.setting}:{number}",
                deduct_when=limit.deduct_when,
            )(view)
        app.view_functions[endpoint] = view
    app.extensions["rate_limiter"] = limiter
    return limiter


def _keep_our_retry_after(response: Response) -> Response:
    """Put back the ``Retry-After`` an error of ours chose (503: the pool, the hash path, the
    database; 429: the throttle). Flask-Limiter replaces any ``Retry-After`` with the reset of
    the endpoint's limit window, which would tell a client a database blip lasts an hour."""
    ours = g.get("retry_after")
    if ours is not None:
        response.headers["Retry-After"] = ours
    return response


def _limit_unrouted(limiter: Limiter) -> Callable[[], None]:
    """A before-request hook: requests no route answers (404, 405) count toward the client's
    total too. Flask-Limiter skips any request without an endpoint, so a client sending
    nothing but unknown paths would otherwise never be limited.

    :raises RateLimited: the client's total is spent.
    """

    def check() -> None:
        if request.url_rule is not None or not limiter.enabled or _exempt():
            return
        item = parse(str(current_app.config["RATELIMIT_PER_CLIENT"]))
        try:  # the very counter of Flask-Limiter's application limit ("global" scope)
            allowed = limiter.limiter.hit(item, "auth:rl", client_ip(), "global")
        except Exception:  # noqa: BLE001 - a storage fault must not turn a 404 into a 500
            return
        if not allowed:
            audit.record(Event.RATE_LIMITED, endpoint=None, limit=str(item))
            retry_after = str(int(item.get_expiry()))
            raise RateLimited(headers={"Retry-After": retry_after})

    return check


def _bound_the_fallback(limiter: Limiter, max_keys: int) -> None:
    # Flask-Limiter builds a plain MemoryStorage for its fallback and has no setting for it.
    storage = BoundedMemoryStorage(max_keys)
    limiter._fallback_storage = storage  # noqa: SLF001
    limiter._fallback_limiter = MovingWindowRateLimiter(storage)  # noqa: SLF001
