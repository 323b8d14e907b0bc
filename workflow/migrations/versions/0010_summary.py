"""the dashboards' daily summary: firms per district × field × size × state, and the starts per local day,
kept by triggers on `enterprises` in the transaction of every write that changes them

Revision ID: 0010_summary
Revises: 0009_supervision
Create Date: 2026-12-02

On SQLite (one writer at a time) the triggers add to the summary rows themselves. On PostgreSQL they append
delta rows instead (a row trigger for updates, statement triggers over the transition tables for inserts and
deletes, so a COPY import writes one delta per group), so that concurrent transitions never wait on one
counter row; the sweep folds the deltas in (`workflow.summary.compact`). Existing firms are counted here.
The history's day is the campaign's local day in Asia/Shanghai (UTC+8, no daylight saving since 1991).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_summary"
down_revision: str | None = "0010_oversight"  # after the task list and escalation indexes
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = ("state", "district_code", "key_field", "above_size", "left_mobilized_at")


def started_on(row: str, dialect: str) -> str:
    """The local day a row's firm left `mobilized`, or NULL while it has not (or has no stamp)."""
    day = (
        f"CAST(({row}left_mobilized_at AT TIME ZONE 'Asia/Shanghai') AS DATE)"
        if dialect == "postgresql"
        else f"date({row}left_mobilized_at, '+480 minutes')"
    )
    return f"CASE WHEN {row}state <> 'mobilized' AND {row}left_mobilized_at IS NOT NULL THEN {day} END"


def upgrade() -> None:
    op.create_table(
        "summary_states",
        sa.Column("district_code", sa.String(length=12), nullable=False),
        sa.Column("key_field", sa.Boolean(), nullable=False),
        sa.Column("above_size", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("firms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("district_code", "key_field", "above_size", "state"),
    )
    op.create_table(
        "summary_starts",
        sa.Column("district_code", sa.String(length=12), nullable=False),
        sa.Column("key_field", sa.Boolean(), nullable=False),
        sa.Column("above_size", sa.Boolean(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("firms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("district_code", "key_field", "above_size", "started_on"),
    )
    op.create_table(
        "summary_deltas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_code", sa.String(length=12), nullable=False),
        sa.Column("key_field", sa.Boolean(), nullable=False),
        sa.Column("above_size", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    dialect = op.get_bind().dialect.name
    op.execute(
        "INSERT INTO summary_states (district_code, key_field, above_size, state, firms) "
        "SELECT district_code, key_field, above_size, state, count(*) FROM enterprises "
        "GROUP BY district_code, key_field, above_size, state"
    )
    day = started_on("", dialect)
    op.execute(
        "INSERT INTO summary_starts (district_code, key_field, above_size, started_on, firms) "
        f"SELECT district_code, key_field, above_size, {day}, count(*) FROM enterprises "
        f"WHERE {day} IS NOT NULL GROUP BY district_code, key_field, above_size, {day}"
    )
    if dialect == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    def add(row: str, sign: str) -> str:
        columns = f"{row}.district_code, {row}.key_field, {row}.above_size"
        day = started_on(f"{row}.", "sqlite")
        return (
            "INSERT INTO summary_states (district_code, key_field, above_size, state, firms) "
            f"VALUES ({columns}, {row}.state, {sign}1) "
            "ON CONFLICT (district_code, key_field, above_size, state) "
            f"DO UPDATE SET firms = firms {sign} 1; "
            "INSERT INTO summary_starts (district_code, key_field, above_size, started_on, firms) "
            f"SELECT {columns}, {day}, {sign}1 WHERE {day} IS NOT NULL "
            "ON CONFLICT (district_code, key_field, above_size, started_on) "
            f"DO UPDATE SET firms = firms {sign} 1;"
        )

    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in COUNTED)
    op.execute(f"CREATE TRIGGER summary_insert AFTER INSERT ON enterprises BEGIN {add('NEW', '+')} END")
    op.execute(f"CREATE TRIGGER summary_delete AFTER DELETE ON enterprises BEGIN {add('OLD', '-')} END")
    op.execute(
        f"CREATE TRIGGER summary_update AFTER UPDATE OF {', '.join(COUNTED)} ON enterprises WHEN {changed} "
        f"BEGIN {add('OLD', '-')} {add('NEW', '+')} END"
    )


def _postgres_triggers() -> None:
    columns = "district_code, key_field, above_size, state, started_on, n"

    def row(name: str, sign: str) -> str:
        return (
            f"({name}.district_code, {name}.key_field, {name}.above_size, {name}.state, "
            f"{started_on(name + '.', 'postgresql')}, {sign}1)"
        )

    op.execute(
        "CREATE FUNCTION dabiao_summary_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"INSERT INTO summary_deltas ({columns}) VALUES {row('OLD', '-')}, {row('NEW', '')}; "
        "RETURN NULL; END $$"
    )
    day = started_on("", "postgresql")
    for name, table, sign in (("added", "NEW", ""), ("removed", "OLD", "-")):
        op.execute(
            f"CREATE FUNCTION dabiao_summary_{name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO summary_deltas ({columns}) "
            f"SELECT district_code, key_field, above_size, state, {day}, {sign}count(*) FROM {name} "
            f"GROUP BY district_code, key_field, above_size, state, {day}; "
            "RETURN NULL; END $$"
        )
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in COUNTED)
    op.execute(
        "CREATE TRIGGER summary_update AFTER UPDATE ON enterprises FOR EACH ROW "
        f"WHEN ({changed}) EXECUTE FUNCTION dabiao_summary_update()"
    )
    op.execute(
        "CREATE TRIGGER summary_insert AFTER INSERT ON enterprises REFERENCING NEW TABLE AS added "
        "FOR EACH STATEMENT EXECUTE FUNCTION dabiao_summary_added()"
    )
    op.execute(
        "CREATE TRIGGER summary_delete AFTER DELETE ON enterprises REFERENCING OLD TABLE AS removed "
        "FOR EACH STATEMENT EXECUTE FUNCTION dabiao_summary_removed()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("update", "insert", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS summary_{name} ON enterprises")
        for name in ("update", "added", "removed"):
            op.execute(f"DROP FUNCTION IF EXISTS dabiao_summary_{name}()")
    else:
        for name in ("update", "insert", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS summary_{name}")
    op.drop_table("summary_deltas")
    op.drop_table("summary_starts")
    op.drop_table("summary_states")
