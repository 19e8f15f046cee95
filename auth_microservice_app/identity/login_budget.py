"""Service-wide budget of dummy verifications for sign-ins to addresses without a password.

A wrong password for an address that has no account (or no password, or an expired
unverified one) costs a dummy argon2 verification, so that the time of the answer does not
tell whether the address exists (:func:`..utils.security.burn_password_check`). The per-IP
limit and the per-account throttle do not stop an attacker who rotates IPs *and* addresses:
each fresh address buys one more hash, and the hashes are the service's CPU. So the dummy
verifications of the whole service share one budget, ``LOGIN_UNKNOWN_BUDGET`` per minute
(a fixed window in Redis, counted atomically by one Lua script; ``0`` turns it off). While
Redis is down each process counts its own, ``LOGIN_UNKNOWN_BUDGET_LOCAL`` per minute.

What happens past the budget, and why. The answer stays ``401 invalid_credentials``, after
:func:`..utils.security.imitate_password_check`: as long as a real verification in this
process recently took (a random one of the last 128, its wait for a hash thread included),
and refused with 503 if that one was, but computing nothing and taking no hash thread. The
alternatives each reveal which addresses exist, or hand the attacker a switch:

* ``401`` at once: an attacker exhausts the budget (that is the attack) and then reads
  existence off the response time, fast for unknown addresses, a hash later for known ones;
  the budget would turn a CPU attack into an enumeration oracle.
* ``429`` or ``503`` for unknown addresses only: names them outright, since known addresses
  still get their verification.
* ``429`` or ``503`` for every login: the attacker, for the price of the budget per minute,
  switches password sign-in off for everyone.

A replayed time follows the real ones, under load too, but not exactly (it is drawn from this
process's recent verifications, not from the moment's), so past the budget the two paths are
close, not identical; while the budget lasts they are identical, dummy hash for dummy hash.
Every password sign-in, known address or not, makes the same Redis round trip (the script
counts 0 for a known address), so the budget's bookkeeping itself adds no difference. The
count is not given back when the dummy verification is refused for lack of a hash thread.
"""

from __future__ import annotations

import threading
import time
from typing import cast

from flask import current_app

from ..utils.redis_client import RedisUnavailable, get_redis

PREFIX = "auth:login-budget:unknown:"
WINDOW_SECONDS = 60

#: KEYS[1]: this window's count. ARGV: amount (1 for an unknown address, 0 for a known one:
#: the same round trip either way), the key's lifetime. Returns the count.
_SPEND = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return used
"""


class _LocalBudget:
    """This process's count while Redis is down: the same fixed window, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window = -1
        self._used = 0

    def spend(self, window: int, amount: int) -> int:
        with self._lock:
            if window != self._window:
                self._window, self._used = window, 0
            self._used += amount
            return self._used

    def clear(self) -> None:
        with self._lock:
            self._window, self._used = -1, 0


_local = _LocalBudget()


def reset_local_state() -> None:
    """Forget this process's spending of the budget (counted here only while Redis is down).

    For tests: they flush Redis between cases, and this window's local count would otherwise
    carry into the next test. The count in Redis is not touched.
    """
    _local.clear()


def spend(*, unknown: bool) -> bool:
    """Count one password sign-in against the budget; whether a dummy verification is allowed.

    ``unknown``: the address has no usable password, so a dummy verification is due; it is
    counted, and False comes back once this minute's budget is spent. A known address counts
    nothing and always gets True, after the same round trip.
    """
    config = current_app.config
    budget = int(config["LOGIN_UNKNOWN_BUDGET"])
    if budget <= 0:
        return True
    window = int(time.time() // WINDOW_SECONDS)
    amount = 1 if unknown else 0
    key = f"{PREFIX}{window}"
    try:
        result = get_redis().run(lambda r: r.eval(_SPEND, 1, key, amount, 2 * WINDOW_SECONDS))
        used = int(cast("int", result))
    except RedisUnavailable:
        used = _local.spend(window, amount)
        budget = int(config["LOGIN_UNKNOWN_BUDGET_LOCAL"])
    if unknown and used > budget:
        metrics = current_app.extensions.get("auth_metrics")
        if metrics is not None:
            metrics.login_unknown_over_budget.inc()
        return False
    return True
