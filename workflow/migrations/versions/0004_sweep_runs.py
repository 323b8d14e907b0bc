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
        sa.Column("config", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
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
    op.create_table(
        "sweep_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("claimed_for", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sweep_changes") as batch:
        batch.create_index("ix_sweep_changes_claimed", ["claimed_for", "subject_kind", "subject_id"], unique=False)
    _change_triggers()


# What a deadline rule looks at; a change to any of it is written to sweep_changes by the database itself,
# whoever makes it (engine, records, directory import, hand-written SQL).
WATCHED = {
    # table: (subject kind, column naming the subject, columns watched on update)
    "enterprises": ("enterprise", "id", ("state", "notified_at", "key_field", "above_size")),
    "hazards": ("hazard", "id", ("status", "deadline", "severity", "enterprise_id")),
    "applications": (
        "application",
        "id",
        ("status", "submitted_at", "verified_at", "audit_passed_at", "reviewed_at", "enterprise_id"),
    ),
    "referrals": ("enterprise", "enterprise_id", ("status",)),
}


def _change_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for column in ("id", "enterprise_id"):
            op.execute(
                f"CREATE FUNCTION dabiao_sweep_change_{column}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN INSERT INTO sweep_changes (subject_kind, subject_id) VALUES (TG_ARGV[0], NEW.{column}); "
                "RETURN NULL; END $$"
            )
    for table, (kind, column, watched) in WATCHED.items():
        changed = " OR ".join(
            f"OLD.{c} IS DISTINCT FROM NEW.{c}" if dialect == "postgresql" else f"OLD.{c} IS NOT NEW.{c}"
            for c in watched
        )
        events = [("insert", "INSERT", None)] if table != "referrals" else []
        events.append(("update", "UPDATE", changed))
        for name, event, when in events:
            trigger = f"sweep_change_{table}_{name}"
            if dialect == "postgresql":
                condition = f"WHEN ({when}) " if when else ""
                op.execute(
                    f"CREATE TRIGGER {trigger} AFTER {event} ON {table} FOR EACH ROW {condition}"
                    f"EXECUTE FUNCTION dabiao_sweep_change_{column}('{kind}')"
                )
            else:
                condition = f"WHEN {when} " if when else ""
                op.execute(
                    f"CREATE TRIGGER {trigger} AFTER {event} ON {table} FOR EACH ROW {condition}"
                    f"BEGIN INSERT INTO sweep_changes (subject_kind, subject_id) VALUES ('{kind}', NEW.{column}); END"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in WATCHED:
        for name in ("insert", "update"):
            on = f" ON {table}" if dialect == "postgresql" else ""
            op.execute(f"DROP TRIGGER IF EXISTS sweep_change_{table}_{name}{on}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS dabiao_sweep_change_id()")
        op.execute("DROP FUNCTION IF EXISTS dabiao_sweep_change_enterprise_id()")
    op.drop_table("sweep_changes")
    with op.batch_alter_table("enterprises") as batch:
        batch.drop_index("ix_enterprises_notified_at")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_index("ix_escalations_rule_status")
        batch.drop_index("ix_escalations_subject_step")
    op.drop_table("sweep_runs")
