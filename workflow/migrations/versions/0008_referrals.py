"""referrals follow the firm, district targets, guidance of benchmark candidates

Revision ID: 0008_referrals
Revises: 0008_certs
Create Date: 2026-12-01

* referral_suggestions: the sweep's candidates for referral, a worklist item of the district (a referral
  exists only once the district proposes it).
* referrals: the proposer's user (for the withdrawal note), withdrawn_at and the reason.
* district_targets: the official per-district starting targets (附件2), imported; they win over the file.
* guidance_assignments / guidance_visits: experts and officers sent to benchmark candidates, and their visits.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import workflow.models

revision: str = "0008_referrals"
down_revision: str | None = "0008_certs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Text = sqlmodel.sql.sqltypes.AutoString
Instant = workflow.models.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proposer_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_at", Instant(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawal_reason", Text(), nullable=True))
        batch_op.create_foreign_key("fk_referrals_proposer_user_id", "users", ["proposer_user_id"], ["id"])

    op.create_table(
        "referral_suggestions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", Text(length=200), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("district_code", Text(length=12), nullable=False),
        sa.Column("grounds", Text(length=40), nullable=False),
        sa.Column("status", Text(length=12), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("suggested_at", Instant(timezone=True), nullable=False),
        sa.Column("closed_at", Instant(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("referral_suggestions", schema=None) as batch_op:
        batch_op.create_index("ix_referral_suggestions_district_status", ["district_code", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_referral_suggestions_enterprise_id"), ["enterprise_id"], unique=False)

    op.create_table(
        "district_targets",
        sa.Column("district_code", Text(length=12), nullable=False),
        sa.Column("key_field_started", sa.Integer(), nullable=False),
        sa.Column("other_started", sa.Integer(), nullable=False),
        sa.Column("source", Text(length=40), nullable=False),
        sa.Column("file_name", Text(length=200), nullable=False),
        sa.Column("imported_by", Text(length=80), nullable=False),
        sa.Column("imported_at", Instant(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["district_code"], ["districts.code"]),
        sa.PrimaryKeyConstraint("district_code"),
    )

    op.create_table(
        "guidance_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("district_code", Text(length=12), nullable=False),
        sa.Column("person", Text(length=80), nullable=False),
        sa.Column("kind", Text(length=12), nullable=False),
        sa.Column("from_date", sa.Date(), nullable=False),
        sa.Column("assigned_by", Text(length=80), nullable=False),
        sa.Column("assigned_at", Instant(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("guidance_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guidance_assignments_enterprise_id"), ["enterprise_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guidance_assignments_district_code"), ["district_code"], unique=False)

    op.create_table(
        "guidance_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("note", Text(), nullable=False),
        sa.Column("recorded_by", Text(length=80), nullable=False),
        sa.Column("recorded_at", Instant(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assignment_id"], ["guidance_assignments.id"]),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("guidance_visits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guidance_visits_assignment_id"), ["assignment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guidance_visits_enterprise_id"), ["enterprise_id"], unique=False)


def downgrade() -> None:
    op.drop_table("guidance_visits")
    op.drop_table("guidance_assignments")
    op.drop_table("district_targets")
    op.drop_table("referral_suggestions")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_constraint("fk_referrals_proposer_user_id", type_="foreignkey")
        batch_op.drop_column("withdrawal_reason")
        batch_op.drop_column("withdrawn_at")
        batch_op.drop_column("proposer_user_id")
