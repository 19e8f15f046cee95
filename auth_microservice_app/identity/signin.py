"""Where every first factor ends: a session, a second-factor challenge when 2FA is on, or,
for a role that requires a second factor the user does not have yet, only a token to enrol one.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .. import audit
from ..audit import Event
from ..models import User
from ..utils.security import new_token_id
from . import tokens
from .challenges import MfaChallenge, start_challenge
from .sessions import ClientInfo, TokenPair, start_session


@dataclass(frozen=True)
class EnrollmentRequired:
    """``REQUIRE_2FA_FOR_ROLES``: no session until a second factor is enrolled."""

    enrollment_token: str
    expires_in: int
    mfa_enrollment_required: bool = True


SignInResult = TokenPair | MfaChallenge | EnrollmentRequired


def roles_requiring_two_factor(user: User) -> list[str]:
    """The user's roles that ``REQUIRE_2FA_FOR_ROLES`` names (empty: no such policy for them)."""
    required = set(current_app.config["REQUIRE_2FA_FOR_ROLES"])
    return [role for role in (user.roles or []) if role in required]


def needs_enrollment(user: User) -> bool:
    """Whether a role of the user requires a second factor that the user does not have."""
    return bool(roles_requiring_two_factor(user)) and not user.two_factor_enabled


def sign_in(user: User, client: ClientInfo, *, amr: list[str]) -> SignInResult:
    """Finish a first-factor sign-in (password, magic link, OAuth): every path ends here.

    Returns a session's token pair; a second-factor challenge when the user has 2FA on; or, when
    a role of the user requires 2FA and none is enrolled, only an enrollment token.
    """
    if user.two_factor_enabled:
        return start_challenge(user, client, amr=amr)
    if needs_enrollment(user):
        audit.record(
            Event.MFA_ENROLLMENT_REQUIRED, user_id=user.id, roles=roles_requiring_two_factor(user)
        )
        token = tokens.encode_enrollment(
            subject=str(user.id), jti=new_token_id(), issued_at=tokens.now()
        )
        return EnrollmentRequired(token, int(current_app.config["MFA_TOKEN_TTL"]))
    return start_session(user, client, amr=amr)
