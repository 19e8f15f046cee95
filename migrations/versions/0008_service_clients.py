"""Service clients (OAuth 2.0 client credentials) and revocations of their tokens.

``revoked_tokens.user_id`` becomes optional: a revoked service token names its ``client_id``
instead.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "service_clients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("previous_secret_hash", sa.String(length=64), nullable=True),
        sa.Column("previous_secret_expires_at", TZ, nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("rotated_at", TZ, nullable=True),
        sa.Column("last_used_at", TZ, nullable=True),
        sa.Column("disabled_at", TZ, nullable=True),
        sa.Column("deleted_at", TZ, nullable=True),
        sa.Column("tokens_revoked_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_service_clients_client_id")),
    )
    op.create_index("ix_service_clients_disabled_at", "service_clients", ["disabled_at"])
    op.create_index(
        "ix_service_clients_tokens_revoked_at", "service_clients", ["tokens_revoked_at"]
    )
    with op.batch_alter_table("revoked_tokens") as batch:
        batch.alter_column("user_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("client_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM revoked_tokens WHERE user_id IS NULL")
    with op.batch_alter_table("revoked_tokens") as batch:
        batch.drop_column("client_id")
        batch.alter_column("user_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_index("ix_service_clients_tokens_revoked_at", table_name="service_clients")
    op.drop_index("ix_service_clients_disabled_at", table_name="service_clients")
    op.drop_table("service_clients")
