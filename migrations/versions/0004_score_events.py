"""Lead score events and the contact's decayed score.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "score_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "contact_id", sa.Integer(), sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rule", sa.String(60), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20)),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("contact_id", "rule", "source"),
    )
    op.create_index("ix_score_events_contact", "score_events", ["contact_id", "occurred_at"])
    with op.batch_alter_table("contacts") as table:
        table.add_column(sa.Column("score_points", sa.Float(), nullable=False, server_default="0"))
        table.add_column(sa.Column("score_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as table:
        table.drop_column("score_at")
        table.drop_column("score_points")
    op.drop_index("ix_score_events_contact", table_name="score_events")
    op.drop_table("score_events")
