"""review teams: the server's draws (seed, candidates, team) and misconduct reports; each member's scoring
sheet per outline element and the team's combination

Revision ID: 0008_review
Revises: 0008_referrals
Create Date: 2026-12-01

* review_draws: every draw (a team, a redraw, one replacement) with the seed from `secrets`, the candidate
  list and the team it gave, so anyone can redo it; review_assignments.draw_id points at it.
* reviewer_reports: suspected reviewer misconduct reported by a district bureau, decided by the center.
* reviews.sheet: a member's score per outline element, or how the team's score was combined.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import workflow.models

revision: str = "0008_review"
down_revision: str | None = "0008_referrals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_draws",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("team", sa.JSON(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("replaces_reviewer_id", sa.Integer(), nullable=True),
        sa.Column("drawn_at", workflow.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("drawn_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.ForeignKeyConstraint(["replaces_reviewer_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_draws", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_draws_application_id"), ["application_id"], unique=False)
    op.create_table(
        "reviewer_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("district_code", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("reported_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("reported_at", workflow.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("decided_at", workflow.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(["reviewer_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reviewer_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviewer_reports_reviewer_id"), ["reviewer_id"], unique=False)
    with op.batch_alter_table("review_assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("draw_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_review_assignments_draw_id", "review_draws", ["draw_id"], ["id"])
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sheet", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_column("sheet")
    with op.batch_alter_table("review_assignments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_review_assignments_draw_id", type_="foreignkey")
        batch_op.drop_column("draw_id")
    with op.batch_alter_table("reviewer_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviewer_reports_reviewer_id"))
    op.drop_table("reviewer_reports")
    with op.batch_alter_table("review_draws", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_draws_application_id"))
    op.drop_table("review_draws")
