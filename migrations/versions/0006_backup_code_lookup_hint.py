"""Backup codes get a keyed lookup hint: a wrong code no longer costs ten argon2 checks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: codes made before this have no hint and are still checked one by one.
    with op.batch_alter_table("two_factor_backup_codes") as batch:
        batch.add_column(sa.Column("lookup_hint", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("two_factor_backup_codes") as batch:
        batch.drop_column("lookup_hint")
