"""RFC 7662 introspection of our access tokens, a user's or a service's.

A token is active only when its signature, type, issuer, audience and times verify
(:func:`.tokens.decode_resource_token`) and nothing revoked it: the token itself, its session
(a user's: signing out, a password reset, disabling the account end the session), or its
client (a service's: disabling or deleting the client). That last check is one Redis round trip
(:mod:`.revocation`), the database answering only while Redis cannot.

Refresh tokens are never active here: only their owner's client presents them, to
``/api/v1/auth/refresh``; a resource server has no use for them.
"""

from __future__ import annotations

from typing import Any

from . import revocation, tokens

INACTIVE: dict[str, Any] = {"active": False}
#: Claims of a user's access token that an introspection answer repeats.
USER_CLAIMS = ("sid", "email", "email_verified", "roles", "amr", "fresh")
COMMON_CLAIMS = ("sub", "client_id", "iss", "aud", "exp", "iat", "nbf", "jti")


def introspect(token: str) -> dict[str, Any]:
    """The RFC 7662 answer for ``token``: its claims with ``"active": true``, or inactive."""
    claims = tokens.decode_resource_token(token)
    if claims is None:
        return dict(INACTIVE)
    if claims["type"] == tokens.SERVICE:
        if revocation.is_service_token_revoked(
            str(claims["jti"]), str(claims["client_id"]), int(claims["iat"])
        ):
            return dict(INACTIVE)
        extra = {"scope": claims["scope"]}
    else:
        if revocation.is_revoked(str(claims["jti"]), str(claims.get("sid", ""))):
            return dict(INACTIVE)
        extra = {name: claims[name] for name in USER_CLAIMS if name in claims}
        if "email" in claims:
            extra["username"] = claims["email"]
    answer = {"active": True, "token_type": "Bearer"}
    answer.update({name: claims[name] for name in COMMON_CLAIMS if name in claims})
    answer.update(extra)
    return answer
