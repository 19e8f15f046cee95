"""Client library for the auth service: verify its access tokens, get service tokens.

* :class:`Verifier`: offline verification of RFC 9068 access tokens against the issuer's JWKS,
  optionally with an RFC 7662 introspection (revocation) check.
* :class:`ClientCredentials`: a service's own token by the client-credentials grant, cached.
* ``auth_service_client.flask`` and ``auth_service_client.fastapi``: route guards.
"""

from .claims import Claims
from .client_credentials import ClientCredentials
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
    "ClientCredentials",
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
