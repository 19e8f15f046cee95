"""Response helpers every blueprint shares: no-store bodies, token pairs, sign-in results."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from ..identity.challenges import MfaChallenge
from ..identity.sessions import ClientInfo, TokenPair
from ..identity.signin import EnrollmentRequired, SignInResult
from .schemas import EnrollmentRequiredSchema, MfaChallengeSchema, TokenPairSchema, UserSchema

# Schemas are stateless once built, and building one costs more than dumping with it.
_USER_SCHEMA = UserSchema()
_TOKEN_PAIR_SCHEMA = TokenPairSchema()


def client_info() -> ClientInfo:
    return ClientInfo(ip=request.remote_addr, user_agent=request.user_agent.string or None)


def no_store(body: Any, status: int = 200) -> tuple[Response, int]:
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response, status


def tokens(pair: TokenPair) -> tuple[Response, int]:
    return no_store(_TOKEN_PAIR_SCHEMA.dump(pair))


def sign_in_body(result: SignInResult) -> tuple[Response, int]:
    """A token pair, or ``{"mfa_required": true, "mfa_token", "methods"}`` (API.md, /login), or
    ``{"mfa_enrollment_required": true, "enrollment_token", "expires_in"}``."""
    if isinstance(result, MfaChallenge):
        return no_store(MfaChallengeSchema().dump(result))
    if isinstance(result, EnrollmentRequired):
        return no_store(EnrollmentRequiredSchema().dump(result))
    return tokens(result)


def user_body(user: Any, status: int = 200) -> tuple[Response, int]:
    return no_store({"user": _USER_SCHEMA.dump(user)}, status)
