"""Sessions are indexed by (user_id, revoked_at): a user's open sessions, read without the revoked.

The listing (``GET /api/v1/auth/sessions``) and the per-user limit (``SESSION_MAX_PER_USER``)
read a user's open sessions; the new index finds them without the user's revoked ones, which
stay until the hourly purge. It replaces ``ix_user_sessions_user_id``, its leading column.

On PostgreSQL the index is built ``CONCURRENTLY`` (sign-ins and refreshes keep writing the
table meanwhile), outside the migration's transaction. Should that build fail, it leaves an
INVALID index behind: drop ``ix_user_sessions_user_id_revoked_at`` and upgrade again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NEW = "ix_user_sessions_user_id_revoked_at"
OLD = "ix_user_sessions_user_id"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                NEW, "user_sessions", ["user_id", "revoked_at"], postgresql_concurrently=True
            )
            op.drop_index(OLD, table_name="user_sessions", postgresql_concurrently=True)
        return
    op.create_index(NEW, "user_sessions", ["user_id", "revoked_at"])
    op.drop_index(OLD, table_name="user_sessions")


def downgrade() -> None:
    op.create_index(OLD, "user_sessions", ["user_id"])
    op.drop_index(NEW, table_name="user_sessions")
