"""Client library for the auth service: verify its access tokens, get service tokens.

* :class:`Verifier`: offline verification of RFC 9068 access tokens against the issuer's JWKS,
  optionally with an RFC 7662 introspection (revocation) check.
"""

from .claims import Claims
from .errors import (
    ClientCredentialsError,
    InvalidToken,
    IssuerUnavailable,
    TokenExpired,
    TokenRevoked,
    VerificationError,
)
from .introspection import ClientSecret
from .verifier import Verifier

__all__ = [
    "Claims",
    "ClientCredentialsError",
    "ClientSecret",
    "InvalidToken",
    "IssuerUnavailable",
    "TokenExpired",
    "TokenRevoked",
    "VerificationError",
    "Verifier",
]
__version__ = "0.1.0"
