"""Administration: `/api/v1/admin` (users, their sessions and second factor, security events,
service clients) and `flask users ...`; every call needs the `admin` role (see
:mod:`.blueprint`)."""

from . import routes  # noqa: F401 - routes attach themselves to bp
from .blueprint import bp
from .cli import users_cli

__all__ = ["bp", "users_cli"]
