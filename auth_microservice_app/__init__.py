"""Authentication microservice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m auth_microservice_app.app` does not import app.py twice.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
