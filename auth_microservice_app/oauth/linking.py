"""Which local account a provider identity belongs to, and linking it on purpose.

Linking rule (account takeover defence): an identity already linked signs its user in; a new
identity whose email matches a local account links only when the provider says the email is
verified (and if the local address was not proven yet, that is its first proof: the account is
handed over clean first, see :func:`..identity.ownership.claim`); otherwise it is refused with
``account_exists_unverified``. A new identity without a verified email creates nothing.
Signed-in users link any identity through the link flow and :func:`confirm_link`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..audit import Event
from ..errors import (
    AccountDisabled,
    EmailNotVerified,
    InvalidLinkToken,
    LastSignInMethod,
    NotFound,
    OAuthAlreadyLinked,
    OAuthEmailUnavailable,
    OAuthLinkRefused,
    PermissionDenied,
)
from ..extensions import db
from ..identity import ownership, revocation, users
from ..mail.notifications import security_notice
from ..models import User
from ..models.base import utcnow
from ..models.oauth import OAuthAccount
from ..utils.addresses import normalize_email
from . import store
from .providers import (
    REGISTRY,
    ProviderIdentity,
)
from .services import get_provider

logger = logging.getLogger(__name__)


def resolve_user(identity: ProviderIdentity) -> User:
    """The local user for a provider identity: found, linked by verified email, or created.

    Commits. A link by verified email queues the ``provider_linked`` notice in the same
    transaction (an account created here gets none). A concurrent sign-in of the same identity
    (unique indexes) is retried once.

    :raises OAuthLinkRefused: a local account has the email, and it or the provider's email is
        not verified (never merged silently).
    :raises OAuthEmailUnavailable: a new identity without a usable email (GitHub with no
        verified primary email).
    :raises OAuthAlreadyLinked: the matching account already has another identity of this
        provider.
    :raises AccountDisabled: the user is disabled.
    """
    try:
        return _resolve_user(identity)
    except IntegrityError:
        db.session.rollback()
    return _resolve_user(identity)


def _resolve_user(identity: ProviderIdentity) -> User:
    account = _find_account(identity.provider, identity.subject)
    if account is not None:
        user = db.session.get(User, account.user_id)
        if user is None:  # pragma: no cover - the foreign key cascades
            raise InvalidLinkToken()
        _ensure_active(user)
        _touch(account, identity, signed_in=True)
        if user.name is None and identity.name:
            user.name = identity.name
        db.session.commit()
        return user
    email = _usable_email(identity.email)
    if email is None:
        raise OAuthEmailUnavailable()
    existing = users.find_user_by_email(email)
    if existing is not None:
        return _link_by_email(existing, identity)
    return _create_user(email, identity)


def _link_by_email(user: User, identity: ProviderIdentity) -> User:
    """Link a new identity to the local account that has its email.

    Only a provider that vouches for the address links; if the local address was not proven
    yet, that vouching is its first proof, and the account is handed over clean first
    (:func:`..auth.ownership.claim`): whatever its registrant attached goes.
    """
    if not identity.email_verified:
        audit.record(
            Event.OAUTH_LINK_REFUSED,
            user_id=user.id,
            provider=identity.provider,
            provider_email_verified=False,
            local_email_verified=user.email_verified,
        )
        raise OAuthLinkRefused()
    _ensure_active(user)
    claimed = ownership.claim(user, proof=f"oauth:{identity.provider}")
    if _user_account(user.id, identity.provider) is not None:
        raise OAuthAlreadyLinked("This account already has another account of this provider.")
    account = _new_account(user, identity, signed_in=True)
    if user.name is None and identity.name:
        user.name = identity.name
    security_notice(user.id, "provider_linked", provider=_display_name(identity.provider))
    db.session.commit()
    revocation.publish(sids=claimed)
    audit.record(
        Event.OAUTH_LINKED, user_id=user.id, provider=account.provider, via="verified_email"
    )
    return user


def _create_user(email: str, identity: ProviderIdentity) -> User:
    if not identity.email_verified:
        # An account holds its address: one the provider does not vouch for is nobody's yet.
        raise OAuthEmailUnavailable()
    user = User(
        id=uuid.uuid4(),
        email=email,
        name=identity.name,
        password_hash=None,
        roles=["user"],
        email_verified_at=utcnow(),
    )
    db.session.add(user)
    db.session.flush()
    _new_account(user, identity, signed_in=True)
    db.session.commit()
    audit.record(Event.USER_REGISTERED, user_id=user.id, via=identity.provider)
    audit.record(Event.OAUTH_LINKED, user_id=user.id, provider=identity.provider, via="sign_up")
    return user


def confirm_link(code: str, user_id: str) -> OAuthAccount:
    """Link the identity a link flow verified to ``user_id``, who must have started that flow.

    The code is spent before anything else, so a refused confirmation cannot be retried.
    Idempotent when the identity is already the user's. Commits; a new link queues the
    ``provider_linked`` notice in the same transaction. A refusal links and sends nothing.

    :raises InvalidLinkToken: the code is unknown, used or expired (``OAUTH_CODE_TTL``).
    :raises PermissionDenied: another user started the flow (nothing is linked).
    :raises AccountDisabled, TokenInvalid: the user is disabled or gone.
    :raises EmailNotVerified: the user's email is not verified.
    :raises OAuthAlreadyLinked: the identity belongs to another user, or the user already has
        another account of this provider.
    """
    pending = store.take(store.LINK, code)
    if pending is None:
        raise InvalidLinkToken()
    if pending.get("user_id") != user_id:
        raise PermissionDenied("This link was started by another account.")
    user = linking_user(user_id)
    identity = ProviderIdentity(
        provider=str(pending["provider"]),
        subject=str(pending["subject"]),
        email=pending.get("email"),
        email_verified=bool(pending.get("email_verified")),
        name=pending.get("name"),
    )
    return _link_identity(user, identity)


def _link_identity(user: User, identity: ProviderIdentity) -> OAuthAccount:
    account = _find_account(identity.provider, identity.subject)
    if account is not None and account.user_id != user.id:
        raise OAuthAlreadyLinked()
    if account is None:
        if _user_account(user.id, identity.provider) is not None:
            raise OAuthAlreadyLinked("Unlink your other account of this provider first.")
        try:
            account = _new_account(user, identity, signed_in=False)
            security_notice(user.id, "provider_linked", provider=_display_name(identity.provider))
            db.session.commit()
        except IntegrityError:
            # Linked by a concurrent request (unique provider+subject, or user+provider).
            db.session.rollback()
            raise OAuthAlreadyLinked() from None
        audit.record(Event.OAUTH_LINKED, user_id=user.id, provider=identity.provider, via="link")
        return account
    _touch(account, identity, signed_in=False)
    db.session.commit()
    return account


def list_accounts(user_id: str) -> list[OAuthAccount]:
    """The user's linked provider accounts, oldest first."""
    user = users.get_active_user(user_id)
    return list(
        db.session.execute(
            select(OAuthAccount)
            .where(OAuthAccount.user_id == user.id)
            .order_by(OAuthAccount.created_at)
        ).scalars()
    )


def unlink(provider_name: str, user_id: str) -> None:
    """Remove the user's account of this provider. Commits, with the ``provider_unlinked``
    notice queued in the same transaction.

    :raises NotFound: the provider is not configured, or the user has no account of it.
    :raises LastSignInMethod: the user has no password and no other linked provider.
    """
    provider = get_provider(provider_name)
    user = users.get_active_user(user_id)
    # Lock the user row: two concurrent unlinks must not both see "another method remains".
    db.session.execute(select(User.id).where(User.id == user.id).with_for_update())
    account = _user_account(user.id, provider.name)
    if account is None:
        raise NotFound("No linked account of this provider.")
    others = db.session.execute(
        select(func.count())
        .select_from(OAuthAccount)
        .where(OAuthAccount.user_id == user.id, OAuthAccount.id != account.id)
    ).scalar_one()
    if user.password_hash is None and others == 0:
        db.session.rollback()
        raise LastSignInMethod()
    db.session.delete(account)
    security_notice(user.id, "provider_unlinked", provider=provider.display_name)
    db.session.commit()
    audit.record(Event.OAUTH_UNLINKED, user_id=user.id, provider=provider.name)


# --- helpers ---------------------------------------------------------------------------------


def _find_account(provider: str, subject: str) -> OAuthAccount | None:
    return db.session.execute(
        select(OAuthAccount).where(
            OAuthAccount.provider == provider, OAuthAccount.subject == subject
        )
    ).scalar_one_or_none()


def _user_account(user_id: uuid.UUID, provider: str) -> OAuthAccount | None:
    return db.session.execute(
        select(OAuthAccount).where(
            OAuthAccount.user_id == user_id, OAuthAccount.provider == provider
        )
    ).scalar_one_or_none()


def _new_account(user: User, identity: ProviderIdentity, *, signed_in: bool) -> OAuthAccount:
    account = OAuthAccount(
        user_id=user.id,
        provider=identity.provider,
        subject=identity.subject,
        email=identity.email,
        email_verified=identity.email_verified,
        last_login_at=utcnow() if signed_in else None,
    )
    db.session.add(account)
    db.session.flush()
    return account


def _touch(account: OAuthAccount, identity: ProviderIdentity, *, signed_in: bool) -> None:
    account.email = identity.email
    account.email_verified = identity.email_verified
    if signed_in:
        account.last_login_at = utcnow()


def _display_name(provider_name: str) -> str:
    cls = REGISTRY.get(provider_name)
    return cls.display_name if cls is not None else provider_name


def _usable_email(email: str | None) -> str | None:
    if not email:
        return None
    try:
        return normalize_email(email)
    except ValueError:
        return None


def linking_user(user_id: str) -> User:
    # An account whose email nobody proved may be someone else's address (a squatter's
    # registration): it may not gather sign-in methods.
    user = users.get_active_user(user_id)
    if not user.email_verified:
        raise EmailNotVerified("Verify your email address before linking a provider.")
    return user


def _ensure_active(user: User) -> None:
    if not user.is_active:
        raise AccountDisabled()


def user_by_id(user_id: Any) -> User | None:
    try:
        return db.session.get(User, uuid.UUID(str(user_id)))
    except ValueError:
        return None
