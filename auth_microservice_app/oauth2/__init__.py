"""OAuth 2.0 for services: `/oauth2/token` (client credentials), `introspect`, `revoke`.

These endpoints speak OAuth 2.0's wire format (form bodies, RFC 6749 §5.2 errors), not the
JSON envelope of the rest of the API. Authlib's authorization server runs the protocol
(:mod:`.server`); the kernel signs the tokens and answers introspection.
"""

from . import routes  # noqa: F401 - routes attach themselves to bp
from .blueprint import bp

__all__ = ["bp"]
