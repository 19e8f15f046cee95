"""Per-address budgets for mail the service sends on request (reset, magic link, verification).

A request that names an address spends one unit of that address's budget for the kind of mail
asked for (``RATELIMIT_EMAIL``, e.g. ``5/hour``), after its body is validated. A spent budget
does not answer 429, which the owner would see for a budget someone else spent: the request is
answered 202 like any other and nothing is sent, as for an address without an account.

What an attacker can still do: spend the budget of an address, so its owner gets no such mail
until the window ends (the owner's password, provider and passkey sign-ins are untouched, and
the other kinds of mail have budgets of their own).

Counters live in Redis (one ``INCR``, the window set on the first unit, keyed by a hash of
:func:`.validators.email_key`); while Redis is down each process counts for itself.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import cast

from flask import current_app
from limits import parse

from ..utils.addresses import email_key
from ..utils.redis_client import RedisUnavailable, get_redis

PREFIX = "auth:budget:"
_LOCAL_LIMIT = 10_000
#: KEYS[1]: the counter; ARGV[1]: the window in seconds. Returns the units spent so far.
_SPEND = """
local spent = redis.call('INCR', KEYS[1])
if spent == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return spent
"""


class _LocalCounters:
    """Per-process counters while Redis is down: bounded, oldest dropped first."""

    def __init__(self) -> None:
        self._data: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def spend(self, key: str, window: int) -> int:
        now = time.monotonic()
        with self._lock:
            spent, ends = self._data.get(key, (0, 0.0))
            if ends <= now:
                spent, ends = 0, now + window
            self._data[key] = (spent + 1, ends)
            self._data.move_to_end(key)
            while len(self._data) > _LOCAL_LIMIT:
                self._data.popitem(last=False)
            return spent + 1


_local = _LocalCounters()


def _key(kind: str, email: str) -> str:
    digest = hashlib.sha256(email_key(email).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PREFIX}{kind}:{digest[:32]}"


def spend(kind: str, email: str) -> bool:
    """Spend one unit of ``email``'s budget for ``kind``; False when it was already spent.

    Always True while rate limiting is off (``RATELIMIT_ENABLED``).
    """
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return True
    item = parse(str(config["RATELIMIT_EMAIL"]))
    window = int(item.get_expiry())
    key = _key(kind, email)
    try:
        spent = int(cast("int", get_redis().run(lambda r: r.eval(_SPEND, 1, key, window))))
    except RedisUnavailable:
        spent = _local.spend(key, window)
    return spent <= item.amount
