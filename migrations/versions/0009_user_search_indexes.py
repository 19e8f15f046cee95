"""Indexes for the administration's user listing: prefix search on email and name, cursor order,
and (PostgreSQL) the role filter.

``lower(email) COLLATE "C"`` (PostgreSQL): byte order, so one B-tree serves both
``LIKE 'prefix%'`` (the planner turns it into a range) and ``ORDER BY`` of the listing, whose
cursor is ``(lower(email), id)``. SQLite compares bytes already (BINARY), and has no "C".
``?role=`` is ``roles::jsonb @> '["<role>"]'``, served by a GIN index on that expression.

On PostgreSQL the indexes are built ``CONCURRENTLY`` (sign-ins keep writing the table), outside
the migration's transaction. Should a build fail, it leaves an INVALID index behind: drop it and
upgrade again.

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
    if op.get_bind().dialect.name != "postgresql":
        op.create_index("ix_users_email_search", "users", [_key("email"), "id"])
        op.create_index("ix_users_name_search", "users", [_key("name"), "id"])
        return
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_users_email_search", "users", [_key("email"), "id"], postgresql_concurrently=True
        )
        op.create_index(
            "ix_users_name_search", "users", [_key("name"), "id"], postgresql_concurrently=True
        )
        op.execute(
            "CREATE INDEX CONCURRENTLY ix_users_roles ON users "
            "USING gin ((roles::jsonb) jsonb_path_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_users_roles")
    op.drop_index("ix_users_name_search", table_name="users")
    op.drop_index("ix_users_email_search", table_name="users")
