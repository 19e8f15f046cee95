"""Account and session rules. Each public function is one unit of work: commits once, or raises."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import ExpiredSignatureError, PyJWTError
from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, lazyload

from .. import metrics
from ..database import autocommit_connection
from ..errors import (
    AccountDisabled,
    AppError,
    AuthenticationFailed,
    EmailNotVerified,
    EmailTaken,
    HashingBusy,
    NotFound,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    WeakPassword,
)
from ..extensions import db
from ..models import SecurityEvent, TwoFactorCredential, User, UserSession
from ..utils import jwt_utils
from ..utils.breach_check import is_breached
from ..utils.jwt_utils import ACCESS, REFRESH, TokenClaims
from ..utils.security import (
    burn_password_check,
    ensure_hash_capacity,
    hash_password,
    imitate_password_check,
    needs_rehash,
    new_token_id,
    verify_password,
)
from . import events, login_budget, outbox, ownership, revocation, throttle
from .notifications import security_notice
from .validators import PolicyViolation, check_password_policy, normalize_password

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


@dataclass(frozen=True)
class MfaChallenge:
    """The first factor passed; a second one is needed (``POST /api/v1/2fa/verify``)."""

    mfa_token: str
    methods: list[str]
    mfa_required: bool = True


SignInResult = TokenPair | MfaChallenge


@dataclass(frozen=True)
class ClientInfo:
    ip: str | None
    user_agent: str | None


# --- users -----------------------------------------------------------------------------------


def find_user_by_email(email: str, *options: Any) -> User | None:
    """The account with this email in any letter case; ``options`` are loader options."""
    return db.session.execute(
        select(User).options(*options).where(func.lower(User.email) == email.lower())
    ).scalar_one_or_none()


def get_active_user(user_id: str) -> User:
    """The user a valid token names.

    :raises TokenInvalid: the user no longer exists.
    :raises AccountDisabled: the account was disabled after the token was issued.
    """
    try:
        # /me shows two_factor_enabled: one query with its 2FA row rather than two
        user = db.session.get(User, uuid.UUID(user_id), options=[joinedload(User.two_factor)])
    except ValueError:
        user = None
    if user is None:
        raise TokenInvalid()
    if not user.is_active:
        raise AccountDisabled()
    return user


@dataclass(frozen=True)
class UserProfile:
    """What ``GET /me`` shows (the fields of ``UserSchema``)."""

    id: uuid.UUID
    email: str
    name: str | None
    email_verified: bool
    two_factor_enabled: bool
    roles: list[str]
    created_at: datetime
    updated_at: datetime


_users = User.__table__.c
_two_factor = TwoFactorCredential.__table__.c
_PROFILE = select(
    _users.id,
    _users.email,
    _users.name,
    _users.email_verified_at,
    _users.is_active,
    _users.roles,
    _users.created_at,
    _users.updated_at,
    _two_factor.enabled_at,
).select_from(User.__table__.outerjoin(TwoFactorCredential.__table__))


def get_profile(user_id: str) -> UserProfile:
    """The profile of the user a valid token names: one read-only row, user and 2FA joined.

    A plain select of columns rather than ``session.get``: nothing here is changed, so the
    ORM's identity map and loaders would be pure cost on the most frequent authenticated call.

    :raises TokenInvalid: the user no longer exists.
    :raises AccountDisabled: the account was disabled after the token was issued.
    """
    try:
        uid = uuid.UUID(user_id)
    except ValueError:
        raise TokenInvalid() from None
    with autocommit_connection() as connection:
        row = connection.execute(_PROFILE.where(_users.id == uid)).one_or_none()
    if row is None:
        raise TokenInvalid()
    if not row.is_active:
        raise AccountDisabled()
    return UserProfile(
        id=row.id,
        email=row.email,
        name=row.name,
        email_verified=row.email_verified_at is not None,
        two_factor_enabled=row.enabled_at is not None,
        roles=list(row.roles),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def validate_new_password(password: str, email: str) -> str:
    """The normalised password, if policy allows it.

    :raises WeakPassword: with ``details.reason`` (too_short, too_long, common, contains_email,
        breached).
    """
    config = current_app.config
    try:
        check_password_policy(
            password,
            email=email,
            min_length=config["PASSWORD_MIN_LENGTH"],
            max_length=config["PASSWORD_MAX_LENGTH"],
        )
    except PolicyViolation as violation:
        raise WeakPassword(
            violation.message, details={"password": [violation.message], "reason": violation.reason}
        ) from None
    normalized = normalize_password(password)
    url = config.get("PASSWORD_BREACH_CHECK_URL")
    if url and is_breached(
        normalized, range_url=url, timeout=config["PASSWORD_BREACH_CHECK_TIMEOUT"]
    ):
        message = "This password has appeared in a data breach."
        raise WeakPassword(message, details={"password": [message], "reason": "breached"})
    return normalized


def register_user(email: str, password: str, name: str | None) -> User:
    """Create an account with an unverified email and queue its verification link.

    :raises WeakPassword: the password fails the policy.
    :raises EmailTaken: the email exists already, in any letter case.
    """
    normalized = validate_new_password(password, email)
    existing = find_user_by_email(email)
    # An unverified account past UNVERIFIED_ACCOUNT_TTL holds the address no longer.
    if existing is not None and not ownership.take_over_expired(existing):
        db.session.rollback()
        raise EmailTaken()
    user = User(
        id=uuid.uuid4(),
        email=email,
        name=name,
        password_hash=hash_password(normalized),
        roles=["user"],
    )
    db.session.add(user)
    outbox.add(outbox.VERIFY_EMAIL, user_id=str(user.id))  # committed with the user
    try:
        db.session.flush()  # the unique index speaks here, before the event is written
        events.record("user_registered", user_id=user.id, in_transaction=True)
        db.session.commit()
    except IntegrityError:  # a concurrent registration won the unique index
        db.session.rollback()
        raise EmailTaken() from None
    revocation.publish(sids=ownership.pending_revocations())
    return user


def update_profile(user_id: str, name: str | None) -> User:
    user = get_active_user(user_id)
    user.name = name
    db.session.commit()
    return user


# --- signing in ------------------------------------------------------------------------------


def authenticate(email: str, password: str) -> User:
    """The user whose password this is.

    Unknown email, wrong password and an account without a password answer alike and cost the
    same argon2 verification, so the answer reveals nothing about which accounts exist. Past
    the service-wide budget of such dummy verifications (:mod:`.login_budget`), an address
    without a password takes as long as a verification instead, computing none.

    :raises AuthenticationFailed: for all three, and for an expired unverified account
        (see :mod:`.ownership`).
    :raises RateLimited: the account is in a brute-force wait (see :mod:`.throttle`).
    :raises HashingBusy: no hash thread was free to check the password (503, ``Retry-After``;
        the attempt is not counted).
    :raises AccountDisabled: only after a correct password.
    :raises EmailNotVerified: when ``REQUIRE_EMAIL_VERIFICATION`` is on and the email is not.
    """
    ensure_hash_capacity()  # under a flood, refused before any database or Redis work
    throttle.reserve(email)  # counted as a failure until the password proves right
    candidate = normalize_password(password)
    # with its 2FA row: sign_in() asks for it next, and one query costs less than two
    user = find_user_by_email(email, joinedload(User.two_factor))
    usable = user is not None and user.password_hash is not None and not ownership.is_expired(user)
    dummy_allowed = login_budget.spend(unknown=not usable)  # same round trip for both
    with throttle.returned_if_unchecked(email):
        if user is None or user.password_hash is None or not usable:
            # past the service-wide budget: as long as a verification, computing none
            (burn_password_check if dummy_allowed else imitate_password_check)(candidate)
            events.record("login_failed", reason="invalid_credentials")
            raise AuthenticationFailed()
        if not verify_password(user.password_hash, candidate):
            events.record("login_failed", user_id=user.id, reason="invalid_credentials")
            raise AuthenticationFailed()
    if user.two_factor_enabled:  # with 2FA the count clears only after the second factor
        throttle.release(email)
    else:
        throttle.succeeded(email)
    if not user.is_active:
        raise AccountDisabled()
    if current_app.config["REQUIRE_EMAIL_VERIFICATION"] and not user.email_verified:
        raise EmailNotVerified()
    if needs_rehash(user.password_hash):
        # an upgrade, not a condition of signing in: without a free hash thread, next time
        with contextlib.suppress(HashingBusy):
            user.password_hash = hash_password(candidate)
    return user


def login(email: str, password: str, client: ClientInfo) -> SignInResult:
    """Check the password, then finish the sign-in (see :func:`sign_in`).

    :raises AuthenticationFailed, AccountDisabled, EmailNotVerified: see :func:`authenticate`.
    """
    user = authenticate(email, password)
    return sign_in(user, client, amr=["pwd"])


def sign_in(user: User, client: ClientInfo, *, amr: list[str]) -> SignInResult:
    """Finish a first-factor sign-in (password, magic link, OAuth): every path ends here.

    Returns a session's token pair, or a second-factor challenge when the user has 2FA on.
    """
    if user.two_factor_enabled:
        from ..two_factor.services import start_challenge  # two_factor imports this module

        return start_challenge(user, client, amr=amr)
    return start_session(user, client, amr=amr)


def start_session(user: User, client: ClientInfo, *, amr: list[str]) -> TokenPair:
    """Open a session for a user who has just proved themselves, and commit it.

    A sign-in from a device (user agent) the account has not used before queues a notice.
    Beyond ``SESSION_MAX_PER_USER`` open sessions, the least recently used are revoked in the
    same transaction (their access tokens die at once).
    """
    issued = jwt_utils.now()
    _notice_if_new_device(user, client)
    session = UserSession(
        user_id=user.id,
        created_at=issued,
        last_used_at=issued,
        expires_at=issued + timedelta(seconds=current_app.config["SESSION_MAX_AGE"]),
        user_agent=(client.user_agent or "")[:512] or None,
        ip=client.ip,
        amr=amr,
        refresh_jti=new_token_id(),
        access_jti=new_token_id(),
        issued_at=issued,
    )
    db.session.add(session)
    db.session.flush()
    retired = _retire_sessions_over_limit(user.id, session.id, issued)
    pair = _token_pair(user, session, fresh=True)
    events.record(
        "login_succeeded", user_id=user.id, session_id=session.id, amr=amr, in_transaction=True
    )
    events.record_per_session("session_revoked", retired, user_id=user.id, reason=SESSION_LIMIT)
    db.session.commit()
    revocation.publish(sids=retired)
    return pair


#: ``revoked_reason`` of a session ended because its user opened too many.
SESSION_LIMIT = "session_limit"
#: The most sessions one sign-in revokes over the limit (about 0.3 ms each): a user who piled
#: up thousands before the limit existed is brought down to it over a few sign-ins, none slow.
RETIRE_AT_ONCE = 500


def _retire_sessions_over_limit(user_id: uuid.UUID, keep: uuid.UUID, now: datetime) -> list[str]:
    """Revoke the user's least recently used open sessions beyond ``SESSION_MAX_PER_USER``
    (0: no limit), never ``keep``, the one just opened; the caller commits, then publishes.

    One query, on the ``(user_id, revoked_at)`` index: the user's open sessions but the
    newest ``limit - 1`` others, at most :data:`RETIRE_AT_ONCE` of them. Usually one row (the
    sign-in that went over). Two concurrent sign-ins of one user may leave one session over
    the limit, until the next.
    """
    limit = int(current_app.config["SESSION_MAX_PER_USER"])
    if limit <= 0:
        return []
    excess = db.session.execute(
        select(UserSession)
        .options(lazyload(UserSession.user))
        .where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
            UserSession.id != keep,
        )
        .order_by(UserSession.last_used_at.desc(), UserSession.id.desc())
        .offset(limit - 1)
        .limit(RETIRE_AT_ONCE)
    ).scalars()
    return revocation.record_session_revocation(excess, SESSION_LIMIT)


def _notice_if_new_device(user: User, client: ClientInfo) -> None:
    agent = (client.user_agent or "")[:512] or None
    previous = (
        db.session.execute(
            select(UserSession.user_agent).where(UserSession.user_id == user.id).limit(50)
        )
        .scalars()
        .all()
    )
    if previous and agent not in previous:
        security_notice(user.id, "new_sign_in", user_agent=agent, ip=client.ip)


def _token_pair(user: User | _Subject, session: UserSession | _Link, *, fresh: bool) -> TokenPair:
    """The pair for the session's current link of the chain (same ids, same times: same tokens)."""
    claims = TokenClaims(
        subject=str(user.id),
        session_id=str(session.id),
        jti=session.access_jti,
        issued_at=session.issued_at,
        email=user.email,
        email_verified=user.email_verified,
        roles=list(user.roles),
        amr=list(session.amr),
        fresh=fresh,
    )
    refresh_claims = TokenClaims(**{**claims.__dict__, "jti": session.refresh_jti, "fresh": False})
    config = current_app.config
    refresh_expires = min(
        session.issued_at + timedelta(seconds=config["JWT_REFRESH_TOKEN_EXPIRES"]),
        session.expires_at,
    )
    return TokenPair(
        access_token=jwt_utils.encode_access(claims),
        refresh_token=jwt_utils.encode_refresh(refresh_claims, refresh_expires),
        expires_in=int(config["JWT_ACCESS_TOKEN_EXPIRES"]),
    )


# --- tokens ----------------------------------------------------------------------------------


def decode(token: str, *, expected_type: str) -> dict[str, Any]:
    """Verify a token of ours (signature, issuer, audience, expiry) and its type.

    :raises TokenExpired: past ``exp``.
    :raises TokenInvalid: anything else wrong, including the wrong type.
    """
    try:
        claims: dict[str, Any] = decode_token(token)
    except ExpiredSignatureError:
        raise TokenExpired() from None
    except (PyJWTError, JWTExtendedException, ValueError):
        raise TokenInvalid() from None
    if claims.get("type") != expected_type:
        raise TokenInvalid()
    return claims


def refresh(refresh_token: str) -> TokenPair:
    """Spend a refresh token for a new pair in the same session (rotation).

    The swap is one conditional UPDATE, so of concurrent uses of one token exactly one wins.
    Presenting a token already spent revokes the session (reuse detection), except the
    immediately previous one within ``REFRESH_REUSE_GRACE_SECONDS``, which gets the same
    successor pair again.

    :raises TokenInvalid, TokenExpired: a bad token.
    :raises TokenRevoked: the session is revoked, or this use was a reuse.
    :raises AccountDisabled: the account was disabled; the token stays unspent.
    """
    try:
        claims = decode(refresh_token, expected_type=REFRESH)
    except AppError as error:
        _count_refresh(error.code)
        raise
    session_id = _session_uuid(claims)
    old_jti = str(claims["jti"])
    issued = jwt_utils.now()
    with autocommit_connection() as connection:
        row = connection.execute(
            _ROTATE,
            {
                "sid": session_id,
                "old": old_jti,
                "now": issued,
                "refresh_jti": new_token_id(),
                "access_jti": new_token_id(),
            },
        ).one_or_none()
    if row is not None:
        subject = _Subject(row.user_id, row.email, row.email_verified_at is not None, row.roles)
        link = _Link(
            row.id, row.access_jti, row.refresh_jti, row.issued_at, row.expires_at, row.amr
        )
        _count_refresh("success")
        return _token_pair(subject, link, fresh=False)
    session = db.session.execute(
        select(UserSession).where(UserSession.id == session_id)
    ).scalar_one_or_none()
    if session is None:
        raise TokenRevoked()
    return _refresh_lost(session, old_jti, issued)


@dataclass(frozen=True)
class _Subject:
    """The user fields a token carries, when no ``User`` was loaded."""

    id: uuid.UUID
    email: str
    email_verified: bool
    roles: list[str]


@dataclass(frozen=True)
class _Link:
    """The session fields a token carries, when no ``UserSession`` was loaded."""

    id: uuid.UUID
    access_jti: str
    refresh_jti: str
    issued_at: datetime
    expires_at: datetime
    amr: list[str]


_sessions = UserSession.__table__.c


def _of_user(column: Any) -> Any:
    return select(column).where(_users.id == _sessions.user_id).scalar_subquery()


# The whole successful rotation is this one statement, committed on its own: the session
# advances only if the presented token is its current link, unrevoked, unexpired, and the account
# active; it returns what the new pair needs. Of concurrent uses exactly one matches the row.
_ROTATE = (
    update(UserSession.__table__)
    .where(
        _sessions.id == bindparam("sid"),
        _sessions.refresh_jti == bindparam("old"),
        _sessions.revoked_at.is_(None),
        _sessions.expires_at > bindparam("now"),
        select(_users.id).where(_users.id == _sessions.user_id, _users.is_active).exists(),
    )
    .values(
        refresh_jti=bindparam("refresh_jti"),
        access_jti=bindparam("access_jti"),
        previous_refresh_jti=bindparam("old"),
        issued_at=bindparam("now"),
        last_used_at=bindparam("now"),
    )
    .returning(
        _sessions.id,
        _sessions.user_id,
        _sessions.access_jti,
        _sessions.refresh_jti,
        _sessions.issued_at,
        _sessions.expires_at,
        _sessions.amr,
        _of_user(_users.email).label("email"),
        _of_user(_users.email_verified_at).label("email_verified_at"),
        _of_user(_users.roles).label("roles"),
    )
)


def _count_refresh(result: str) -> None:
    metrics.get().token_refreshes.labels(result=result).inc()


def _refresh_lost(session: UserSession, old_jti: str, now: datetime) -> TokenPair:
    """Why the rotation matched no row: revoked, expired, account disabled, grace or reuse."""
    if session.revoked_at is not None:
        db.session.rollback()
        _count_refresh("revoked")
        raise TokenRevoked()
    if session.expires_at <= now:
        db.session.rollback()
        _count_refresh("session_expired")
        raise TokenExpired("The session has expired.")
    if session.refresh_jti == old_jti:  # the current link: only a disabled account stopped it
        db.session.rollback()
        raise AccountDisabled()
    grace = current_app.config["REFRESH_REUSE_GRACE_SECONDS"]
    if (
        grace
        and session.previous_refresh_jti == old_jti
        and now - session.issued_at <= timedelta(seconds=grace)
    ):
        pair = _token_pair(session.user, session, fresh=False)
        db.session.rollback()
        _count_refresh("grace_retry")
        return pair
    sids = revocation.record_session_revocation([session], "refresh_reuse")
    db.session.commit()
    revocation.publish(sids=sids)
    events.record("refresh_token_reused", user_id=session.user_id, session_id=session.id)
    _count_refresh("reuse")
    raise TokenRevoked()


def _session_uuid(claims: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(claims.get("sid")))
    except ValueError:
        raise TokenInvalid() from None


# --- signing out and revocation --------------------------------------------------------------


def logout(claims: dict[str, Any], refresh_token: str | None) -> None:
    """Revoke the session of this access token (and of ``refresh_token``, if it is the user's)."""
    session_ids = {_session_uuid(claims)}
    if refresh_token:
        try:
            other = decode(refresh_token, expected_type=REFRESH)
        except AppError:
            other = None
        if other is not None and other.get("sub") == claims["sub"]:
            session_ids.add(_session_uuid(other))
    _revoke_sessions(claims["sub"], session_ids, "logout")


def logout_all(user_id: str) -> int:
    """Revoke every session of the user; returns how many were open."""
    count = revoke_other_sessions(user_id, None, "logout_all")
    events.record("logged_out_everywhere", user_id=user_id, sessions=count)
    return count


def revoke_other_sessions(
    user_id: str | uuid.UUID, keep_session_id: str | None, reason: str
) -> int:
    """Revoke every open session of the user but ``keep_session_id``; the caller commits first.

    Commits, then publishes to Redis; returns how many sessions were revoked.
    """
    query = select(UserSession).where(
        UserSession.user_id == uuid.UUID(str(user_id)), UserSession.revoked_at.is_(None)
    )
    if keep_session_id:
        query = query.where(UserSession.id != uuid.UUID(keep_session_id))
    sids = revocation.record_session_revocation(db.session.execute(query).scalars().all(), reason)
    db.session.commit()
    revocation.publish(sids=sids)
    return len(sids)


def _revoke_sessions(user_id: str, session_ids: set[uuid.UUID], reason: str) -> None:
    sessions = (
        db.session.execute(
            select(UserSession).where(
                UserSession.id.in_(session_ids), UserSession.user_id == uuid.UUID(user_id)
            )
        )
        .scalars()
        .all()
    )
    sids = revocation.record_session_revocation(sessions, reason)
    for sid in sids:
        events.record(
            "session_revoked", user_id=user_id, session_id=sid, reason=reason, in_transaction=True
        )
    db.session.commit()
    revocation.publish(sids=sids)


def revoke_token(user_id: str, token: str) -> None:
    """RFC 7009: revoke one of the user's tokens; unknown, invalid or foreign tokens are ignored.

    An access token is blocklisted by ``jti``; a refresh token ends its whole session, because
    the access tokens it minted must not outlive it.
    """
    try:
        claims: dict[str, Any] = decode_token(token, allow_expired=True)
    except (PyJWTError, JWTExtendedException, AppError, ValueError):
        return
    if claims.get("sub") != user_id:
        return
    if claims.get("type") == REFRESH:
        _revoke_sessions(user_id, {_session_uuid(claims)}, "revoked")
        return
    if claims.get("type") != ACCESS:
        return
    expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=jwt_utils.now().tzinfo)
    if expires_at <= jwt_utils.now():
        return
    revocation.record_token_revocation(str(claims["jti"]), uuid.UUID(user_id), expires_at)
    db.session.commit()
    revocation.publish(jtis=[(str(claims["jti"]), expires_at)])
    events.record("token_revoked", user_id=user_id, session_id=claims.get("sid"))


# --- sessions --------------------------------------------------------------------------------


#: Where a page of sessions stops: the ``(last_used_at, id)`` of its last session.
SessionKey = tuple[datetime, uuid.UUID]


@dataclass(frozen=True)
class SessionPage:
    sessions: list[UserSession]
    #: The key to continue after, or None on the last page.
    next_cursor: SessionKey | None


def list_sessions(user_id: str, *, limit: int, after: SessionKey | None = None) -> SessionPage:
    """One page of the user's open sessions, most recently used first (ties by id).

    Keyset paging on ``(last_used_at, id)``: ``after`` is the key of the previous page's last
    session. A session opened meanwhile is the most recently used, so it never shifts a later
    page (it shows on the first); one used (refreshed) meanwhile moves to the front, where a
    listing under way does not meet it again. One query of at most ``limit + 1`` rows.
    """
    query = (
        select(UserSession)
        .options(lazyload(UserSession.user))  # the listing shows nothing of the user
        .where(
            UserSession.user_id == uuid.UUID(user_id),
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > jwt_utils.now(),
        )
        .order_by(UserSession.last_used_at.desc(), UserSession.id.desc())
        .limit(limit + 1)
    )
    if after is not None:
        used, session_id = after
        query = query.where(
            or_(
                UserSession.last_used_at < used,
                and_(UserSession.last_used_at == used, UserSession.id < session_id),
            )
        )
    rows = list(db.session.execute(query).scalars())
    page = rows[:limit]
    more = len(rows) > limit
    return SessionPage(page, (page[-1].last_used_at, page[-1].id) if more else None)


def delete_session(user_id: str, session_id: uuid.UUID) -> None:
    """Revoke one of the user's sessions.

    :raises NotFound: no such open session of this user (another user's looks the same).
    """
    session = db.session.get(UserSession, session_id)
    if session is None or str(session.user_id) != user_id or session.revoked_at is not None:
        raise NotFound("No such session.")
    _revoke_sessions(user_id, {session_id}, "deleted")


# --- audit -----------------------------------------------------------------------------------


def list_events(user_id: str, *, page: int, per_page: int) -> tuple[list[SecurityEvent], int]:
    """The user's own security events, newest first, and how many there are in all."""
    owner = uuid.UUID(user_id)
    total = db.session.execute(
        select(func.count()).select_from(SecurityEvent).where(SecurityEvent.user_id == owner)
    ).scalar_one()
    rows = db.session.execute(
        select(SecurityEvent)
        .where(SecurityEvent.user_id == owner)
        .order_by(SecurityEvent.occurred_at.desc(), SecurityEvent.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).scalars()
    return list(rows), int(total)


# --- administration --------------------------------------------------------------------------


def disable_user(email: str) -> int:
    """Disable an account and end every one of its sessions at once; returns how many.

    :raises NotFound: no account has this email.
    """
    user = find_user_by_email(email)
    if user is None:
        raise NotFound("No such user.")
    user.is_active = False
    count = revoke_other_sessions(user.id, None, "account_disabled")  # commits both
    events.record("account_disabled", user_id=user.id, sessions=count)
    return count


def revoke_user_sessions(email: str) -> int:
    """End every session of an account (an operator's "sign out everywhere")."""
    user = find_user_by_email(email)
    if user is None:
        raise NotFound("No such user.")
    count = revoke_other_sessions(user.id, None, "admin")
    events.record("logged_out_everywhere", user_id=user.id, sessions=count, by="admin")
    return count
