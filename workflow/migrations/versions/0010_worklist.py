"""the task list's undeliverable notices: a partial index of the firms the mobilization notice cannot reach

Revision ID: 0010_worklist
Revises: 0009_supervision
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_worklist"
down_revision: str | None = "0009_supervision"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as workflow.models.unreached_clause writes it, term by term (SQLite matches a partial index that way)
UNREACHED = "state = 'mobilized' AND notified_at IS NULL AND (email IS NULL OR trim(email) = '')"


def upgrade() -> None:
    where = sa.text(UNREACHED)
    op.create_index(
        "ix_enterprises_unreached",
        "enterprises",
        ["state", "notified_at", "district_code", "created_at"],
        unique=False,
        sqlite_where=where,
        postgresql_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_enterprises_unreached", table_name="enterprises")
