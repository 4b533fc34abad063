"""Sequences: definitions, enrolments and step runs; campaigns a sequence's send steps use.

A campaign recipient's uniqueness gains ``round`` (0 for a broadcast; a step run's id for a
sequence send), so a contact re-entering a sequence, or looping through a step, gets its next
message on the same step campaign.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LIVE = sa.text("status IN ('active', 'paused')")
_ACTIVE = sa.text("status = 'active'")
_OF_SEQUENCE = sa.text("sequence_id IS NOT NULL")


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _parent(name: str, table: str, big: bool = False) -> sa.Column:
    return sa.Column(
        name,
        _BIGID if big else sa.Integer(),
        sa.ForeignKey(f"{table}.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "sequences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("definition", _JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trigger_type", sa.String(20), nullable=False),
        sa.Column("exit_on_reply", sa.Boolean(), nullable=False),
        sa.Column("exit_on_customer", sa.Boolean(), nullable=False),
        sa.Column("exit_on_rep", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        _when("activated_at"),
    )
    op.create_index("ix_sequences_status_trigger", "sequences", ["status", "trigger_type"])
    op.create_table(
        "sequence_enrollments",
        sa.Column("id", _BIGID, primary_key=True),
        _parent("sequence_id", "sequences"),
        _parent("contact_id", "contacts"),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("step_id", sa.String(40)),
        _when("due_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("steps_run", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(200), nullable=False),
        _when("entered_at", nullable=False),
        _when("ended_at"),
        sa.Column("exit_reason", sa.String(20)),
    )
    op.create_index(
        "uq_sequence_enrollments_live",
        "sequence_enrollments",
        ["sequence_id", "contact_id"],
        unique=True,
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )
    op.create_index(
        "ix_sequence_enrollments_due",
        "sequence_enrollments",
        ["due_at"],
        postgresql_where=_ACTIVE,
        sqlite_where=_ACTIVE,
    )
    op.create_index(
        "ix_sequence_enrollments_contact", "sequence_enrollments", ["contact_id", "sequence_id"]
    )
    op.create_index(
        "ix_sequence_enrollments_sequence", "sequence_enrollments", ["sequence_id", "status"]
    )
    op.create_table(
        "sequence_step_runs",
        sa.Column("id", _BIGID, primary_key=True),
        _parent("enrollment_id", "sequence_enrollments", big=True),
        _parent("sequence_id", "sequences"),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("run_no", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(120), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _when("ran_at", nullable=False),
        sa.UniqueConstraint(
            "enrollment_id", "run_no", name="uq_sequence_step_runs_enrollment_id_run_no"
        ),
    )
    op.create_index("ix_sequence_step_runs_step", "sequence_step_runs", ["sequence_id", "step_id"])
    with op.batch_alter_table("campaigns") as table:
        table.add_column(
            sa.Column(
                "sequence_id",
                sa.Integer(),
                sa.ForeignKey(
                    "sequences.id", ondelete="CASCADE", name="fk_campaigns_sequence_id_sequences"
                ),
            )
        )
        table.add_column(sa.Column("sequence_step", sa.String(40)))
    op.create_index(
        "uq_campaigns_sequence_step",
        "campaigns",
        ["sequence_id", "sequence_step"],
        unique=True,
        postgresql_where=_OF_SEQUENCE,
        sqlite_where=_OF_SEQUENCE,
    )
    with op.batch_alter_table("campaign_recipients") as table:
        table.add_column(sa.Column("round", sa.BigInteger(), nullable=False, server_default="0"))
        table.add_column(sa.Column("content_variables", _JSON))
        table.drop_constraint("uq_campaign_recipients_campaign_id_contact_id", type_="unique")
        table.create_unique_constraint(
            "uq_campaign_recipients_campaign_id_contact_id_round",
            ["campaign_id", "contact_id", "round"],
        )


def downgrade() -> None:
    # Sequences' step campaigns (and their recipients, by cascade) go with the sequences: left,
    # they would be broadcasts without a sequence, and their rounds break the old uniqueness.
    op.execute("DELETE FROM campaign_recipients WHERE campaign_id IN "
               "(SELECT id FROM campaigns WHERE sequence_id IS NOT NULL)")
    op.execute("DELETE FROM campaigns WHERE sequence_id IS NOT NULL")
    with op.batch_alter_table("campaign_recipients") as table:
        table.drop_constraint("uq_campaign_recipients_campaign_id_contact_id_round", type_="unique")
        table.create_unique_constraint(
            "uq_campaign_recipients_campaign_id_contact_id", ["campaign_id", "contact_id"]
        )
        table.drop_column("content_variables")
        table.drop_column("round")
    op.drop_index("uq_campaigns_sequence_step", table_name="campaigns")
    with op.batch_alter_table("campaigns") as table:
        table.drop_constraint("fk_campaigns_sequence_id_sequences", type_="foreignkey")
        table.drop_column("sequence_step")
        table.drop_column("sequence_id")
    op.drop_table("sequence_step_runs")
    op.drop_table("sequence_enrollments")
    op.drop_index("ix_sequences_status_trigger", table_name="sequences")
    op.drop_table("sequences")
