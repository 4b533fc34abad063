"""Handoffs of hot leads to reps, and what routing needs to know about reps.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("status IN ('open', 'accepted')")


def upgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.add_column(
            sa.Column(
                "working_hours",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default="{}",
            )
        )
        table.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))
        table.add_column(sa.Column("lead_cap", sa.Integer()))
        table.add_column(sa.Column("last_assigned_at", sa.DateTime(timezone=True)))
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "contact_id", sa.Integer(), sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rep_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("source_interaction_id", sa.BigInteger()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_touch_at", sa.DateTime(timezone=True)),
        sa.Column("speed_to_lead_s", sa.Integer()),
    )
    op.create_index(
        "ux_handoffs_active_contact",
        "handoffs",
        ["contact_id"],
        unique=True,
        postgresql_where=_ACTIVE,
        sqlite_where=_ACTIVE,
    )
    op.create_index("ix_handoffs_rep_status", "handoffs", ["rep_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_handoffs_rep_status", table_name="handoffs")
    op.drop_index("ux_handoffs_active_contact", table_name="handoffs")
    op.drop_table("handoffs")
    with op.batch_alter_table("users") as table:
        for column in ("last_assigned_at", "lead_cap", "timezone", "working_hours"):
            table.drop_column(column)
