"""sweep and dashboard indexes: the ladder probes the unique dedupe key, the service-level rules find a
day's band of applications by their instants, the dashboards count firms from one covering index

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

* ix_escalations_subject_step goes: the sweep asks whether a subject has reached a step through the unique
  dedupe key it must keep anyway, so each escalation row costs one random index page fewer to write.
* ix_applications_{submitted,verified,audit_passed,reviewed}_at: the service-level rules' day (applications
  whose instant falls in one local day) is an index range instead of a scan of every application in that
  status. Each is partial (instant set) and changes only when its own instant is set, once per application.
* ix_enterprises_district_state_key becomes ix_enterprises_district_state_key_above (above_size added):
  the dashboards' firms per district × state × field and the non-key above-size firms come from one pass
  over one covering index instead of two queries, the second visiting every firm's row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANTS = ("submitted_at", "verified_at", "audit_passed_at", "reviewed_at")
COUNTED = ("district_code", "state", "key_field")


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.drop_index("ix_escalations_subject_step")
    with op.batch_alter_table("applications") as batch:
        for column in INSTANTS:
            set_ = sa.column(column).is_not(None)
            batch.create_index(
                f"ix_applications_{column}", [column], unique=False, sqlite_where=set_, postgresql_where=set_
            )
    with op.batch_alter_table("enterprises") as batch:
        batch.drop_index("ix_enterprises_district_state_key")
        batch.create_index("ix_enterprises_district_state_key_above", [*COUNTED, "above_size"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enterprises") as batch:
        batch.drop_index("ix_enterprises_district_state_key_above")
        batch.create_index("ix_enterprises_district_state_key", list(COUNTED), unique=False)
    with op.batch_alter_table("applications") as batch:
        for column in INSTANTS:
            batch.drop_index(f"ix_applications_{column}")
    with op.batch_alter_table("escalations") as batch:
        batch.create_index("ix_escalations_subject_step", ["subject_id", "rule", "step"], unique=False)
