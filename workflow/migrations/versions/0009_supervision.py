"""supervision carried out: inspections, patrols and guidance visits with their findings, training sessions and
briefings with the firms that attended, and the key the firms' safety codes are signed with

Revision ID: 0009_supervision
Revises: 0008_certs
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import workflow.models

revision: str = "0009_supervision"
down_revision: str | None = "0008_certs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int | None = None) -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sqlmodel.sql.sqltypes.AutoString(length=length) if length else sqlmodel.sql.sqltypes.AutoString()


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("district_code", _text(12), nullable=False),
        sa.Column("kind", _text(12), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("inspectors", sa.JSON(), nullable=False),
        sa.Column("items_checked", sa.JSON(), nullable=False),
        sa.Column("summary", _text(), nullable=True),
        sa.Column("grade", _text(20), nullable=False),
        sa.Column("plan_month", sa.Date(), nullable=True),
        sa.Column("penalty_decision", _text(), nullable=True),
        sa.Column("legal_basis", _text(), nullable=True),
        sa.Column("penalty_band", _text(40), nullable=True),
        sa.Column("penalty_factor", sa.Float(), nullable=True),
        sa.Column("evidence_ids", sa.JSON(), nullable=False),
        sa.Column("recorded_by", _text(80), nullable=False),
        sa.Column("recorded_at", workflow.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["district_code"], ["districts.code"]),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inspections_district_held", "inspections", ["district_code", "held_on"])
    op.create_index("ix_inspections_enterprise_held", "inspections", ["enterprise_id", "held_on"])
    op.create_table(
        "inspection_findings",
        sa.Column("inspection_id", sa.Integer(), nullable=False),
        sa.Column("hazard_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["hazard_id"], ["hazards.id"]),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspections.id"]),
        sa.PrimaryKeyConstraint("inspection_id", "hazard_id"),
    )
    op.create_table(
        "trainings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_code", _text(12), nullable=False),
        sa.Column("kind", _text(12), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("topic", _text(200), nullable=False),
        sa.Column("recorded_by", _text(80), nullable=False),
        sa.Column("recorded_at", workflow.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["district_code"], ["districts.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trainings_district_held", "trainings", ["district_code", "held_on"])
    op.create_table(
        "training_attendances",
        sa.Column("training_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.ForeignKeyConstraint(["training_id"], ["trainings.id"]),
        sa.PrimaryKeyConstraint("training_id", "enterprise_id"),
    )
    op.create_index(
        op.f("ix_training_attendances_enterprise_id"), "training_attendances", ["enterprise_id"], unique=False
    )
    op.create_table(
        "safety_code_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret", _text(64), nullable=False),
        sa.Column("created_at", workflow.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("safety_code_keys")
    op.drop_index(op.f("ix_training_attendances_enterprise_id"), table_name="training_attendances")
    op.drop_table("training_attendances")
    op.drop_index("ix_trainings_district_held", table_name="trainings")
    op.drop_table("trainings")
    op.drop_table("inspection_findings")
    op.drop_index("ix_inspections_enterprise_held", table_name="inspections")
    op.drop_index("ix_inspections_district_held", table_name="inspections")
    op.drop_table("inspections")
