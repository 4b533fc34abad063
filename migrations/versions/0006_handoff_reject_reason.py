"""Why a rep rejected a handoff (reported, and routed past them).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as table:
        table.add_column(sa.Column("reject_reason", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("handoffs") as table:
        table.drop_column("reject_reason")
