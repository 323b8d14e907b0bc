"""oversight: the offices' escalation cases read from one covering index; outbox_retries, every message put
back in the queue by hand, by whom and when (append-only)

Revision ID: 0010_oversight
Revises: 0009_supervision
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import workflow.models

revision: str = "0010_oversight"
down_revision: str | None = "0010_worklist"  # after the task list's index
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_escalations_cases",
        "escalations",
        ["step", "status", "district_code", "enterprise_id", "rule", "deadline"],
        unique=False,
    )
    op.create_table(
        "outbox_retries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("retried_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("retried_at", workflow.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("was_status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("was_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_outbox_retries_outbox_id"), "outbox_retries", ["outbox_id"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER outbox_retries_no_{action.lower()} BEFORE {action} ON outbox_retries "
                "BEGIN SELECT RAISE(ABORT, 'outbox retries are append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION dabiao_outbox_retries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'outbox retries are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER outbox_retries_append_only BEFORE UPDATE OR DELETE ON outbox_retries "
            "FOR EACH ROW EXECUTE FUNCTION dabiao_outbox_retries_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER IF EXISTS outbox_retries_append_only ON outbox_retries")
        op.execute("DROP FUNCTION IF EXISTS dabiao_outbox_retries_append_only()")
    op.drop_index(op.f("ix_outbox_retries_outbox_id"), table_name="outbox_retries")
    op.drop_table("outbox_retries")
    op.drop_index("ix_escalations_cases", table_name="escalations")
