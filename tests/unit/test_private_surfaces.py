"""The private parts of libraries this service builds on, pinned: an upgrade that moves one
fails here, by name, instead of silently switching a protection off.

- Flask-Limiter keeps its in-memory fallback in ``_fallback_storage``/``_fallback_limiter``, with
  no setting to bound it: ``middleware/rate_limit._bound_the_fallback`` replaces both.
- limits' ``MemoryStorage`` sweeps expired windows in the name-mangled ``__expire_events``:
  ``BoundedMemoryStorage`` extends that sweep.
- Flask-Talisman's per-response hooks ``_force_https``, ``_make_nonce`` and
  ``_set_response_headers``: ``middleware/security_headers`` caches their output per endpoint.

Flask-JWT-Extended is used through its public API only (``create_*_token``,
``encode_key_loader``); verification is ours (``identity/tokens.decode``).
"""

from __future__ import annotations

import inspect

from flask import Flask
from flask_limiter import Limiter
from flask_talisman import Talisman
from limits.storage import MemoryStorage

from auth_microservice_app.middleware.rate_limit import BoundedMemoryStorage, client_ip


def test_flask_limiter_keeps_its_fallback_where_we_replace_it():
    app = Flask(__name__)
    limiter = Limiter(
        key_func=client_ip,
        app=app,
        storage_uri="memory://",
        in_memory_fallback_enabled=True,
    )
    assert hasattr(limiter, "_fallback_storage"), "Flask-Limiter moved its fallback storage"
    assert hasattr(limiter, "_fallback_limiter"), "Flask-Limiter moved its fallback limiter"
    assert hasattr(limiter, "_storage_dead"), "Flask-Limiter no longer marks a dead storage"


def test_limits_memory_storage_still_sweeps_in_the_method_we_extend():
    sweep = getattr(MemoryStorage, "_MemoryStorage__expire_events", None)
    assert callable(sweep), "limits renamed MemoryStorage.__expire_events"
    assert list(inspect.signature(sweep).parameters) == ["self"]
    for name in ("events", "storage", "expirations"):
        assert name in vars(MemoryStorage()), f"limits' MemoryStorage has no {name!r} table"
    bounded = BoundedMemoryStorage(3)
    for n in range(10):
        bounded.incr(f"key{n}", 60)
    assert bounded.size <= 3


def test_talisman_still_has_the_hooks_we_cache():
    for name, parameters in [
        ("_force_https", ["self"]),
        ("_make_nonce", ["self"]),
        ("_set_response_headers", ["self", "response"]),
    ]:
        hook = getattr(Talisman, name, None)
        assert callable(hook), f"Flask-Talisman has no {name} any more"
        assert list(inspect.signature(hook).parameters) == parameters, name
