"""Segments, campaigns and campaign recipients (one row per campaign x contact).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _user(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"))


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("filters", _JSON, nullable=False),
        _user("created_by"),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("sender", sa.String(64)),
        sa.Column("segment_id", sa.Integer(), sa.ForeignKey("segments.id", ondelete="SET NULL")),
        sa.Column("variants", _JSON, nullable=False),
        sa.Column("content_sid", sa.String(64)),
        sa.Column("content_variables", _JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _when("send_at"),
        sa.Column("in_contact_timezone", sa.Boolean(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("quiet_start", sa.String(5)),
        sa.Column("quiet_end", sa.String(5)),
        _user("created_by"),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.Column("summary", _JSON, nullable=False),
        _when("launched_at"),
        _when("finished_at"),
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "contact_id", sa.Integer(), sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("variant", sa.String(20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        _when("not_before"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("claimed_at"),
        sa.Column("provider_message_id", sa.String(64)),
        sa.Column("interaction_id", sa.BigInteger()),
        sa.Column("error_code", sa.String(20)),
        sa.Column("action", sa.String(60)),
        _when("sent_at"),
        _when("replied_at"),
        sa.UniqueConstraint(
            "campaign_id", "contact_id", name="uq_campaign_recipients_campaign_id_contact_id"
        ),
    )
    op.create_index(
        "ix_campaign_recipients_state",
        "campaign_recipients",
        ["campaign_id", "state", "not_before"],
    )


    op.create_index(
        "ix_campaign_recipients_contact_sent", "campaign_recipients", ["contact_id", "sent_at"]
    )


def downgrade() -> None:
    op.drop_table("campaign_recipients")
    op.drop_table("campaigns")
    op.drop_table("segments")
