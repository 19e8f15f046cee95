"""Indexes for the administration's user listing: prefix search on email and name, cursor order.

``lower(email) COLLATE "C"`` (PostgreSQL): byte order, so one B-tree serves both
``LIKE 'prefix%'`` (the planner turns it into a range) and ``ORDER BY`` of the listing, whose
cursor is ``(lower(email), id)``. SQLite compares bytes already (BINARY), and has no "C".

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _key(column: str) -> sa.TextClause:
    collate = ' COLLATE "C"' if op.get_bind().dialect.name == "postgresql" else ""
    return sa.text(f"lower({column}){collate}")


def upgrade() -> None:
    op.create_index("ix_users_email_search", "users", [_key("email"), "id"])
    op.create_index("ix_users_name_search", "users", [_key("name"), "id"])


def downgrade() -> None:
    op.drop_index("ix_users_name_search", table_name="users")
    op.drop_index("ix_users_email_search", table_name="users")
