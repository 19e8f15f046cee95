"""Accounts and sessions: `/api/v1/auth`."""

from . import account_routes, routes  # noqa: F401 - routes attach themselves to bp
from .blueprint import bp

__all__ = ["bp"]
