"""Sign in with Google, GitHub and Apple: `/api/v1/oauth`."""

from . import routes  # noqa: F401 - routes attach themselves to bp
from .blueprint import bp

__all__ = ["bp"]
