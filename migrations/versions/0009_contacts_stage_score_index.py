"""Index the contacts list's usual filter: lifecycle stage, then score.

bench/scoring.py: "MQLs scoring 40+" over 100k contacts was a sequential scan (37 ms); with
this index it is under 1 ms.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contacts_stage_score", "contacts", ["lifecycle_stage", "score"])


def downgrade() -> None:
    op.drop_index("ix_contacts_stage_score", table_name="contacts")
