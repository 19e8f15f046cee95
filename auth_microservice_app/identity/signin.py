"""Where every first factor ends: a session, or a second-factor challenge when 2FA is on."""

from __future__ import annotations

from ..models import User
from .challenges import MfaChallenge, start_challenge
from .sessions import ClientInfo, TokenPair, start_session

SignInResult = TokenPair | MfaChallenge


def sign_in(user: User, client: ClientInfo, *, amr: list[str]) -> SignInResult:
    """Finish a first-factor sign-in (password, magic link, OAuth): every path ends here.

    Returns a session's token pair, or a second-factor challenge when the user has 2FA on.
    """
    if user.two_factor_enabled:
        return start_challenge(user, client, amr=amr)
    return start_session(user, client, amr=amr)
