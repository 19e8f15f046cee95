"""The verified claims of an access token, typed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidToken


@dataclass(frozen=True, eq=False)
class Claims(Mapping[str, Any]):
    """What a verified access token says.

    The typed attributes cover what resource servers decide on; ``raw`` holds every claim as
    sent, and the object is itself a read-only mapping over ``raw`` (``claims["email"]``).
    """

    subject: str
    client_id: str | None
    scopes: frozenset[str]
    roles: frozenset[str]
    fresh: bool
    session_id: str | None
    token_id: str
    expires_at: int
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Claims:
        """Build from a decoded, already verified payload; odd claim types are refused."""
        scope = payload.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("scope must be a space-separated string")
        roles = payload.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise InvalidToken("roles must be a list of strings")
        subject, jti = payload["sub"], payload["jti"]
        if not isinstance(subject, str) or not isinstance(jti, str):
            raise InvalidToken("sub and jti must be strings")
        client_id = payload.get("client_id")
        session_id = payload.get("sid")
        return cls(
            subject=subject,
            client_id=client_id if isinstance(client_id, str) else None,
            scopes=frozenset(scope.split()),
            roles=frozenset(roles),
            fresh=payload.get("fresh") is True,
            session_id=session_id if isinstance(session_id, str) else None,
            token_id=jti,
            expires_at=int(payload["exp"]),
            raw=dict(payload),
        )

    @property
    def is_service(self) -> bool:
        """True for a client-credentials token (``sub`` is the client itself)."""
        return self.client_id is not None and self.subject == self.client_id

    def has_roles(self, *roles: str) -> bool:
        """True when the token holds every one of ``roles``."""
        return set(roles) <= self.roles

    def has_scopes(self, *scopes: str) -> bool:
        """True when the token holds every one of ``scopes``."""
        return set(scopes) <= self.scopes

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)
