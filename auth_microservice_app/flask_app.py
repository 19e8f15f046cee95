"""The Flask class the factory builds: Flask, minus two per-request costs this API never needs.

Both were measured with cProfile on the request path (``bench/cpu_per_request.py``):

* ``ensure_sync`` runs ``inspect.iscoroutinefunction`` on every hook and view of every request
  (14 calls a request here). Whether a function is a coroutine function never changes, so the
  answer is kept per function.
* The default session interface builds an itsdangerous signer for every request to read a
  session cookie this API never sets: clients authenticate with bearer tokens, and OAuth state
  lives in Redis/the database (``oauth/store.py``). Sessions are therefore null; writing to
  ``flask.session`` raises, so nothing can start relying on them unnoticed. (The one cookie,
  OAuth's browser binding, is a random nonce that ``oauth/routes.py`` sets on its response.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Request
from flask.sessions import SessionInterface, SessionMixin


class StatelessSessions(SessionInterface):
    """No cookie session: every request gets Flask's read-only ``NullSession``."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        return None  # Flask then uses make_null_session()

    def save_session(self, app: Flask, session: SessionMixin, response: Any) -> None:
        return None


class AuthFlask(Flask):
    session_interface = StatelessSessions()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync[func]
        except KeyError:
            sync = self._sync[func] = super().ensure_sync(func)
            return sync
        except TypeError:  # an unhashable callable: rare, answer without caching
            return super().ensure_sync(func)
