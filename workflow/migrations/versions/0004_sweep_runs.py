"""Deadline sweeps: one row per swept day; the escalation and firm indexes the sweep probes by.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import workflow.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sweep_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("started_at", workflow.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", workflow.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("as_of"),
    )
    with op.batch_alter_table("escalations") as batch:
        batch.create_index("ix_escalations_subject_step", ["subject_id", "rule", "step"], unique=False)
        batch.create_index("ix_escalations_rule_status", ["rule", "status", "subject_id"], unique=False)
    with op.batch_alter_table("enterprises") as batch:
        batch.create_index("ix_enterprises_notified_at", ["notified_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enterprises") as batch:
        batch.drop_index("ix_enterprises_notified_at")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_index("ix_escalations_rule_status")
        batch.drop_index("ix_escalations_subject_step")
    op.drop_table("sweep_runs")
