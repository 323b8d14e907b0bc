"""enterprises.left_mobilized_at: the instant a firm left `mobilized` (started, or closed before starting)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

The dashboards' history of starts read the firm's first or second event, on the assumption that only the
mobilization notice could come before the start. Records that are not transitions (hazards, uploads,
self-assessments, review teams, inspections) are events in the firm's chain too, so the start can be any
event; the engine now stamps the instant on the firm when it leaves `mobilized`. Existing firms take it from
their events.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enterprises") as batch:
        batch.add_column(sa.Column("left_mobilized_at", workflow.models.UTCDateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE enterprises SET left_mobilized_at = (SELECT min(ev.at) FROM events ev "
        "WHERE ev.enterprise_id = enterprises.id AND ev.from_state = 'mobilized' AND ev.to_state <> 'mobilized') "
        "WHERE state <> 'mobilized'"
    )


def downgrade() -> None:
    with op.batch_alter_table("enterprises") as batch:
        batch.drop_column("left_mobilized_at")
