"""Conversations, deals with attribution, notifications to users, and the contact's last touch.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("contacts") as table:
        table.add_column(sa.Column("last_touch_channel", sa.String(20)))
        table.add_column(sa.Column("last_touch_campaign_id", sa.Integer()))
        table.add_column(_when("last_touch_at"))
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "contact_id", sa.Integer(), sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("assignee_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(10), nullable=False),
        _when("snoozed_until"),
        _when("last_inbound_at"),
        _when("last_outbound_at"),
        _when("last_read_at"),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.UniqueConstraint("contact_id", "channel", name="uq_conversations_contact_id_channel"),
    )
    op.create_index("ix_conversations_inbox", "conversations", ["status", "last_inbound_at"])
    op.create_index("ix_conversations_assignee", "conversations", ["assignee_id", "status"])
    op.create_table(
        "deals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "contact_id", sa.Integer(), sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("expected_close_on", sa.Date()),
        sa.Column("lost_reason", sa.String(40)),
        sa.Column("first_touch_channel", sa.String(20)),
        sa.Column("first_touch_campaign_id", sa.Integer()),
        sa.Column("last_touch_channel", sa.String(20)),
        sa.Column("last_touch_campaign_id", sa.Integer()),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        _when("closed_at"),
    )
    op.create_index("ix_deals_contact", "deals", ["contact_id"])
    op.create_index("ix_deals_owner_stage", "deals", ["owner_id", "stage"])
    op.create_index("ix_deals_stage_closed", "deals", ["stage", "closed_at"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("body", sa.String(480), nullable=False),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id", ondelete="CASCADE")),
        sa.Column("handoff_id", sa.Integer()),
        _when("created_at", nullable=False),
        _when("read_at"),
        sa.Column("sms_status", sa.String(20)),
        sa.Column("sms_error", sa.String(200)),
    )
    op.create_index(
        "ix_notifications_user_unread", "notifications", ["user_id", "read_at", "id"]
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("deals")
    op.drop_table("conversations")
    with op.batch_alter_table("contacts") as table:
        for column in ("last_touch_at", "last_touch_campaign_id", "last_touch_channel"):
            table.drop_column(column)
