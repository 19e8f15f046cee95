"""Per-account brute-force throttle: consecutive failures buy an exponentially growing wait.

After ``LOGIN_THROTTLE_THRESHOLD`` consecutive failures against one account (password or 2FA
code), every attempt is answered 429 with ``Retry-After`` until the wait is over, without checking
the password, so the answer never tells whether a guess was right. Each further failure doubles
the wait up to ``LOGIN_THROTTLE_MAX_SECONDS``; a success clears the count; a quiet
``LOGIN_FAILURE_WINDOW`` forgets it.

An attempt is *reserved* before the secret is checked, in one atomic step: refused while the
account waits, otherwise counted as a failure (and the wait started once the count reaches the
threshold). A success then clears the count (:func:`succeeded`); a correct password that is
not yet a success (the 2FA step follows) gives its reservation back (:func:`release`). Checking
first and counting after the verification would let every request in flight at once pass the
check: parallel guesses would outrun the throttle.

Trade-off: an attacker who knows an email can keep that account in short waits, but never
locked: the wait is capped (5 minutes by default), it costs the attacker a steady stream of
requests that the per-IP limits also count, and the user still signs in through a magic link,
OAuth or a password reset, none of which this throttle blocks. A hard lockout would hand every
attacker a denial-of-service switch for any account.

Second-factor codes have a count of their own (:data:`CODES`) besides the account's
(:data:`ACCOUNT`): a wrong code counts toward both, and ``/2fa/verify`` waits on the code count
alone. Wrong passwords from someone else therefore never block the owner's second step, and the
magic-link and OAuth paths (which end at that step for 2FA users) stay open.

Keys are the SHA-256 of the account's :func:`.validators.email_key`, the same normalisation the
account lookup uses. State lives in Redis (shared by every worker, one Lua script per step);
while Redis is down each process keeps its own, under a lock, with the same guarantees.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app

from .. import audit
from ..audit import Event
from ..errors import HashingBusy, RateLimited
from ..utils.addresses import email_key
from ..utils.redis_client import RedisUnavailable, get_redis

PREFIX = "auth:throttle:"
ACCOUNT = "account"
CODES = "codes"
_LOCAL_LIMIT = 10_000

#: KEYS[1]: the count. ARGV: now, enforce (1 | 0), threshold, base, cap, ttl.
#: Returns {1, failures} when the attempt is counted, {0, blocked_until} when refused.
_RESERVE = """
local now = tonumber(ARGV[1])
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked_until') or '0')
if ARGV[2] == '1' and blocked > now then
  return {0, tostring(blocked)}
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local over = failures - tonumber(ARGV[3])
if over >= 0 then
  local wait = math.min(tonumber(ARGV[4]) * 2 ^ math.min(over, 60), tonumber(ARGV[5]))
  redis.call('HSET', KEYS[1], 'blocked_until', tostring(now + wait))
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
return {1, failures}
"""

#: KEYS[1]: the count. ARGV: threshold. One reservation given back; below the threshold the
#: wait it may have started is lifted.
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', -1)
if failures < tonumber(ARGV[1]) then redis.call('HDEL', KEYS[1], 'blocked_until') end
if failures <= 0 then redis.call('DEL', KEYS[1]) end
return failures
"""


@dataclass(frozen=True)
class _Policy:
    threshold: int
    base: float
    cap: float
    ttl: int

    @classmethod
    def current(cls) -> _Policy:
        config = current_app.config
        return cls(
            threshold=int(config["LOGIN_THROTTLE_THRESHOLD"]),
            base=float(config["LOGIN_THROTTLE_BASE_SECONDS"]),
            cap=float(config["LOGIN_THROTTLE_MAX_SECONDS"]),
            ttl=int(config["LOGIN_FAILURE_WINDOW"]) + int(config["LOGIN_THROTTLE_MAX_SECONDS"]),
        )

    def wait(self, failures: int) -> float:
        over = failures - self.threshold
        return 0.0 if over < 0 else min(self.base * 2 ** min(over, 60), self.cap)


class _LocalStore:
    """Process-local fallback while Redis is down: the same steps under one lock, bounded."""

    def __init__(self) -> None:
        self._data: OrderedDict[str, tuple[int, float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key: str, now: float) -> tuple[int, float]:
        failures, blocked_until, expires = self._data.get(key, (0, 0.0, 0.0))
        if expires and expires < now:
            self._data.pop(key, None)
            return 0, 0.0
        return failures, blocked_until

    def _put(self, key: str, failures: int, blocked_until: float, expires: float) -> None:
        self._data[key] = (failures, blocked_until, expires)
        self._data.move_to_end(key)
        while len(self._data) > _LOCAL_LIMIT:
            self._data.popitem(last=False)

    def reserve(self, key: str, now: float, enforce: bool, policy: _Policy) -> float | None:
        """None when counted, else the time the wait ends."""
        with self._lock:
            failures, blocked_until = self._get(key, now)
            if enforce and blocked_until > now:
                return blocked_until
            failures += 1
            wait = policy.wait(failures)
            self._put(key, failures, now + wait if wait else blocked_until, now + policy.ttl)
            return None

    def release(self, key: str, now: float, policy: _Policy) -> None:
        with self._lock:
            failures, blocked_until = self._get(key, now)
            if failures <= 1:
                self._data.pop(key, None)
                return
            failures -= 1
            blocked = blocked_until if failures >= policy.threshold else 0.0
            self._put(key, failures, blocked, now + policy.ttl)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_local = _LocalStore()


def reset_local_state() -> None:
    """Forget this process's fallback counts (kept only while Redis is down).

    For tests: they flush Redis between cases, and the process-local counts would otherwise
    carry one test's failures into the next. Counts in Redis are not touched.
    """
    _local.clear()


def account_key(email: str, kind: str = ACCOUNT) -> str:
    digest = hashlib.sha256(email_key(email).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PREFIX}{kind}:{digest[:32]}"


def _enabled() -> bool:
    return bool(current_app.config["LOGIN_THROTTLE_ENABLED"])


def _count(key: str, *, enforce: bool) -> float | None:
    policy = _Policy.current()
    now = time.time()
    args = [repr(now), "1" if enforce else "0", policy.threshold, policy.base, policy.cap]
    try:
        result = get_redis().run(lambda r: r.eval(_RESERVE, 1, key, *args, policy.ttl))
    except RedisUnavailable:
        return _local.reserve(key, now, enforce, policy)
    counted, value = cast("list[Any]", result)
    return None if int(counted) == 1 else float(value)


def reserve(email: str, kind: str = ACCOUNT) -> None:
    """Count one attempt against the account before its secret is checked.

    Call :func:`succeeded` when the secret is right, :func:`release` when it is right but the
    sign-in goes on (a second factor follows); a wrong secret needs nothing more.

    :raises RateLimited: with ``Retry-After``, while the account waits (nothing is counted).
    """
    if not _enabled():
        return
    blocked_until = _count(account_key(email, kind), enforce=True)
    if blocked_until is None:
        return
    retry_after = max(1, math.ceil(blocked_until - time.time()))
    audit.record(Event.LOGIN_THROTTLED, reason="too_many_failures")
    raise RateLimited(
        "Too many failed attempts. Try again later.",
        details={"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def record_failure(email: str, kind: str = ACCOUNT) -> None:
    """Count a failure that no reservation counted (a wrong code also counts for the account)."""
    if _enabled():
        _count(account_key(email, kind), enforce=False)


def release(email: str, kind: str = ACCOUNT) -> None:
    """Give back a reservation whose secret was right, without clearing earlier failures."""
    if not _enabled():
        return
    key, policy = account_key(email, kind), _Policy.current()
    try:
        get_redis().run(lambda r: r.eval(_RELEASE, 1, key, policy.threshold))
    except RedisUnavailable:
        _local.release(key, time.time(), policy)


@contextlib.contextmanager
def returned_if_unchecked(email: str, kind: str = ACCOUNT) -> Iterator[None]:
    """Around the check of a reserved attempt: if no hash thread was free to check the secret
    (:class:`~..errors.HashingBusy`, 503), the reservation is given back. Nothing was learnt
    about the secret, and a user retrying after a 503 must not walk into a wait."""
    try:
        yield
    except HashingBusy:
        release(email, kind)
        raise


def succeeded(email: str, *kinds: str) -> None:
    """Clear the account's counts of ``kinds`` (default: the account's own)."""
    keys = [account_key(email, kind) for kind in kinds or (ACCOUNT,)]
    for key in keys:
        _local.delete(key)
    with contextlib.suppress(RedisUnavailable):
        get_redis().run(lambda r: r.delete(*keys))
