"""Index the USSD sessions still open, for the sweeper that marks stale ones abandoned.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OPEN = sa.text("channel = 'ussd' AND delivery_status = 'active'")


def upgrade() -> None:
    op.create_index(
        "ix_interactions_open_ussd",
        "interactions",
        ["created_at"],
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_interactions_open_ussd", table_name="interactions")
