"""Email tokens may carry the address they confirm (an email change binds its link to it).

Revision ID: 0010
Revises: 0008
Create Date: 2027-01-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: only the ``change_email`` purpose names an address.
    with op.batch_alter_table("email_tokens") as batch:
        batch.add_column(sa.Column("new_email", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("email_tokens") as batch:
        batch.drop_column("new_email")
