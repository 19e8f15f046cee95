"""What the lifecycle tests share: walking every table for rows about a user."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from auth_microservice_app.extensions import db

ME = "/api/v1/auth/me"


def user_tables() -> dict[str, list[str]]:
    """Every table with a ``user_id`` column or a column referencing ``users``, and those
    columns (``users`` itself by its ``id``)."""
    found: dict[str, list[str]] = {"users": ["id"]}
    for table in db.metadata.sorted_tables:
        columns = [
            column.name
            for column in table.columns
            if column.name == "user_id"
            or any(key.column.table.name == "users" for key in column.foreign_keys)
        ]
        if columns:
            found[table.name] = columns
    return found


def rows_naming(user_id: str, email: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table whose any value (JSON included) holds the user's id (either
    spelling) or address (any letter case)."""
    needles = {user_id.lower(), uuid.UUID(user_id).hex, email.lower()}
    found: dict[str, list[dict[str, Any]]] = {}
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(select(table)).mappings():
            text = repr(dict(row)).lower()
            if any(needle in text for needle in needles):
                found.setdefault(table.name, []).append(dict(row))
    db.session.rollback()
    return found
