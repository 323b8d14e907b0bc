"""supervision carried out: inspections, patrols and guidance visits with their findings, training sessions and
briefings with the firms that attended, and the key the firms' safety codes are signed with

Guidance visits to benchmark candidates become inspection records of kind `guidance` (with the assignment they
belong to): the rows of `guidance_visits` move over, keeping their ids' order, and the table goes.

Revision ID: 0009_supervision
Revises: 0008_dossier
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import workflow.models

revision: str = "0009_supervision"
down_revision: str | None = "0008_dossier"
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
        sa.Column("grade", _text(20), nullable=True),
        sa.Column("plan_month", sa.Date(), nullable=True),
        sa.Column("penalty_decision", _text(), nullable=True),
        sa.Column("legal_basis", _text(), nullable=True),
        sa.Column("penalty_band", _text(40), nullable=True),
        sa.Column("penalty_factor", sa.Float(), nullable=True),
        sa.Column("evidence_ids", sa.JSON(), nullable=False),
        sa.Column("guidance_assignment_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by", _text(80), nullable=False),
        sa.Column("recorded_at", workflow.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["district_code"], ["districts.code"]),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.ForeignKeyConstraint(["guidance_assignment_id"], ["guidance_assignments.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inspections_district_held", "inspections", ["district_code", "held_on"])
    op.create_index(
        op.f("ix_inspections_guidance_assignment_id"), "inspections", ["guidance_assignment_id"], unique=False
    )
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
    _move_guidance_visits()


def _move_guidance_visits() -> None:
    conn = op.get_bind()
    visits = sa.table(
        "guidance_visits",
        sa.column("id"),
        sa.column("assignment_id"),
        sa.column("enterprise_id"),
        sa.column("visited_on", sa.Date()),
        sa.column("note"),
        sa.column("recorded_by"),
        sa.column("recorded_at", workflow.models.UTCDateTime(timezone=True)),
    )
    assignments = sa.table("guidance_assignments", sa.column("id"), sa.column("district_code"), sa.column("person"))
    inspections = sa.table(
        "inspections",
        sa.column("enterprise_id"),
        sa.column("district_code"),
        sa.column("kind"),
        sa.column("held_on", sa.Date()),
        sa.column("inspectors", sa.JSON()),
        sa.column("items_checked", sa.JSON()),
        sa.column("summary"),
        sa.column("evidence_ids", sa.JSON()),
        sa.column("guidance_assignment_id"),
        sa.column("recorded_by"),
        sa.column("recorded_at", workflow.models.UTCDateTime(timezone=True)),
    )
    rows = conn.execute(
        sa.select(visits, assignments.c.district_code, assignments.c.person)
        .join(assignments, assignments.c.id == visits.c.assignment_id)
        .order_by(visits.c.id)
    ).all()
    if rows:
        conn.execute(
            sa.insert(inspections),
            [
                {
                    "enterprise_id": r.enterprise_id,
                    "district_code": r.district_code,
                    "kind": "guidance",
                    "held_on": r.visited_on,
                    "inspectors": [r.person],
                    "items_checked": [],
                    "summary": r.note,
                    "evidence_ids": [],
                    "guidance_assignment_id": r.assignment_id,
                    "recorded_by": r.recorded_by,
                    "recorded_at": r.recorded_at,
                }
                for r in rows
            ],
        )
    with op.batch_alter_table("guidance_visits") as batch_op:
        batch_op.drop_index("ix_guidance_visits_assignment_id")
        batch_op.drop_index("ix_guidance_visits_enterprise_id")
    op.drop_table("guidance_visits")


def downgrade() -> None:
    op.create_table(
        "guidance_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("note", _text(), nullable=False),
        sa.Column("recorded_by", _text(80), nullable=False),
        sa.Column("recorded_at", workflow.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assignment_id"], ["guidance_assignments.id"]),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_guidance_visits_assignment_id", "guidance_visits", ["assignment_id"])
    op.create_index("ix_guidance_visits_enterprise_id", "guidance_visits", ["enterprise_id"])
    op.execute(
        "INSERT INTO guidance_visits (assignment_id, enterprise_id, visited_on, note, recorded_by, recorded_at) "
        "SELECT guidance_assignment_id, enterprise_id, held_on, COALESCE(summary, ''), recorded_by, recorded_at "
        "FROM inspections WHERE kind = 'guidance' AND guidance_assignment_id IS NOT NULL ORDER BY id"
    )
    op.drop_table("safety_code_keys")
    op.drop_index(op.f("ix_training_attendances_enterprise_id"), table_name="training_attendances")
    op.drop_table("training_attendances")
    op.drop_index("ix_trainings_district_held", table_name="trainings")
    op.drop_table("trainings")
    op.drop_table("inspection_findings")
    op.drop_index(op.f("ix_inspections_guidance_assignment_id"), table_name="inspections")
    op.drop_index("ix_inspections_enterprise_held", table_name="inspections")
    op.drop_index("ix_inspections_district_held", table_name="inspections")
    op.drop_table("inspections")
