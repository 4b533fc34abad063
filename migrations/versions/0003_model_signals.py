"""Model signals on interactions, rolled up on contacts; opt-out review; batched outbox jobs.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions") as table:
        table.add_column(sa.Column("sentiment", sa.String(10)))
        table.add_column(sa.Column("sentiment_score", sa.Float()))
        table.add_column(sa.Column("intent", sa.String(20)))
        table.add_column(sa.Column("intent_confidence", sa.Float()))
        table.add_column(sa.Column("model_version", sa.String(64)))
    with op.batch_alter_table("contacts") as table:
        table.add_column(sa.Column("sentiment", sa.String(10)))
        table.add_column(sa.Column("sentiment_score", sa.Float()))
        table.add_column(sa.Column("sentiment_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("last_intent", sa.String(20)))
        table.add_column(sa.Column("last_intent_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("opt_out_review_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("opt_out_review_interaction_id", sa.BigInteger()))
    op.create_index(
        "ix_contacts_opt_out_review",
        "contacts",
        ["opt_out_review_at"],
        postgresql_where=sa.text("opt_out_review_at IS NOT NULL"),
        sqlite_where=sa.text("opt_out_review_at IS NOT NULL"),
    )
    with op.batch_alter_table("outbox_jobs") as table:
        table.add_column(sa.Column("rq_job_id", sa.String(80)))


def downgrade() -> None:
    with op.batch_alter_table("outbox_jobs") as table:
        table.drop_column("rq_job_id")
    op.drop_index("ix_contacts_opt_out_review", table_name="contacts")
    with op.batch_alter_table("contacts") as table:
        for column in (
            "opt_out_review_interaction_id",
            "opt_out_review_at",
            "last_intent_at",
            "last_intent",
            "sentiment_at",
            "sentiment_score",
            "sentiment",
        ):
            table.drop_column(column)
    with op.batch_alter_table("interactions") as table:
        for column in ("model_version", "intent_confidence", "intent", "sentiment_score", "sentiment"):
            table.drop_column(column)
