"""Every model, imported here so Alembic's autogenerate sees them all."""

from .email import EmailOutbox, EmailToken
from .oauth import OAuthAccount, OAuthState
from .revoked_token import RevokedToken
from .security_event import SecurityEvent
from .service_client import ServiceClient
from .session import UserSession
from .two_factor import BackupCode, MfaChallengeRecord, TwoFactorCredential
from .user import User

__all__ = [
    "BackupCode",
    "EmailOutbox",
    "EmailToken",
    "MfaChallengeRecord",
    "OAuthAccount",
    "OAuthState",
    "RevokedToken",
    "SecurityEvent",
    "ServiceClient",
    "TwoFactorCredential",
    "User",
    "UserSession",
]
