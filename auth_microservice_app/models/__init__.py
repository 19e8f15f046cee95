"""Every model, imported here so Alembic's autogenerate sees them all."""

from .revoked_token import RevokedToken
from .session import UserSession
from .user import User

__all__ = ["RevokedToken", "User", "UserSession"]
