"""A firm's record and dossier: who accepted a finding's rectification, the district's verification opinion and
checklist, what a returned application lacked; upload kinds renamed

Revision ID: 0008_dossier
Revises: 0008_hardening
Create Date: 2026-12-01

Hazards keep the id of the rectification file that closed them and the office's decision (accept or reject,
with a note) on findings raised by an online audit or a review. Applications keep the district's opinion
(核实意见) and the checklist it ticked, and the dossier items a returned application lacked. Uploads of kind
`hazard_rectification` become `rectification`, `application_material` becomes `supporting_material`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.models

revision: str = "0008_dossier"
down_revision: str | None = "0008_hardening"  # after the certificates, referrals, review and hardening migrations
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hazards") as batch:
        batch.add_column(sa.Column("rectification_evidence_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("decided_at", workflow.models.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("decided_by", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("decision_note", sa.String(), nullable=True))
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("verification_opinion", sa.String(), nullable=True))
        batch.add_column(sa.Column("verification_checklist", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("missing", sa.JSON(), nullable=True))
    op.execute("UPDATE evidence_files SET kind = 'rectification' WHERE kind = 'hazard_rectification'")
    op.execute("UPDATE evidence_files SET kind = 'supporting_material' WHERE kind = 'application_material'")


def downgrade() -> None:
    op.execute("UPDATE evidence_files SET kind = 'hazard_rectification' WHERE kind = 'rectification'")
    op.execute("UPDATE evidence_files SET kind = 'application_material' WHERE kind = 'supporting_material'")
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("missing")
        batch.drop_column("verification_checklist")
        batch.drop_column("verification_opinion")
    with op.batch_alter_table("hazards") as batch:
        batch.drop_column("decision_note")
        batch.drop_column("decided_by")
        batch.drop_column("decided_at")
        batch.drop_column("rectification_evidence_id")
