"""The dashboards' daily summary: firms per district × field × size × state (`summary_states`) and the firms
out of `mobilized` per district × field × size × local day they left it (`summary_starts`), so that the first
view of a day reads two small tables instead of every firm.

Database triggers on `enterprises` (migration 0010) keep them in the transaction of every write that changes
a counted column — the engine's transitions, bulk actions, imports and directory loads, a firm's deletion —
whatever writes it. On SQLite the triggers add to the rows themselves (SQLite has one writer at a time); on
PostgreSQL they append rows to `summary_deltas`, so that two transitions of one district and state never wait
on each other's counter row, and `compact` folds the deltas in (the daily sweep calls it). Every read adds
the deltas not yet folded, so a figure is the count over the firms at the reader's snapshot.

`check` compares the summary with a count over the firms and `rebuild` recounts it from the firms
(`dabiao dashboard rebuild-summary`): for a database restored from elsewhere, or written with the triggers
switched off.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from workflow.tables import ENTERPRISES, SUMMARY_DELTAS, SUMMARY_STARTS, SUMMARY_STATES

E = ENTERPRISES
ZONE = "Asia/Shanghai"  # the local day of the history of starts, as the campaign's clock counts days
COMPACT_LOCK = 0x5355_4D4D  # PostgreSQL advisory lock: one compaction at a time

StateKey = tuple[str, bool, bool, str]  # district, key_field, above_size, state
StartKey = tuple[str, bool, bool, dt.date]  # district, key_field, above_size, local day


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _started_on(dialect: str) -> Any:
    """The local day a firm left `mobilized` (NULL while it has not), as the triggers compute it."""
    if dialect == "postgresql":
        day: Any = sa.cast(sa.func.timezone(ZONE, E.c.left_mobilized_at), sa.Date)
    else:
        day = sa.func.date(E.c.left_mobilized_at, "+480 minutes")
    return sa.case((sa.and_(E.c.state != "mobilized", E.c.left_mobilized_at.is_not(None)), day))


def states(conn: sa.Connection, *, district: str | None = None) -> dict[StateKey, int]:
    """Firms per (district, key_field, above_size, state), from the summary and its unfolded deltas."""
    s, d = SUMMARY_STATES, SUMMARY_DELTAS
    parts = [
        sa.select(s.c.district_code, s.c.key_field, s.c.above_size, s.c.state, s.c.firms.label("n")),
        sa.select(d.c.district_code, d.c.key_field, d.c.above_size, d.c.state, d.c.n),
    ]
    if district is not None:
        parts = [p.where(p.selected_columns.district_code == district) for p in parts]
    u = sa.union_all(*parts).subquery()
    rows = conn.execute(
        sa.select(u.c.district_code, u.c.key_field, u.c.above_size, u.c.state, sa.func.sum(u.c.n)).group_by(
            u.c.district_code, u.c.key_field, u.c.above_size, u.c.state
        )
    )
    return {(str(r[0]), bool(r[1]), bool(r[2]), str(r[3])): int(r[4]) for r in rows if r[4]}


def starts(conn: sa.Connection, *, before: dt.date | None = None, district: str | None = None) -> dict[StartKey, int]:
    """Firms out of `mobilized` per (district, key_field, above_size, local day they left it), days before
    `before` only when it is given."""
    s, d = SUMMARY_STARTS, SUMMARY_DELTAS
    parts = [
        sa.select(s.c.district_code, s.c.key_field, s.c.above_size, s.c.started_on, s.c.firms.label("n")),
        sa.select(d.c.district_code, d.c.key_field, d.c.above_size, d.c.started_on, d.c.n).where(
            d.c.started_on.is_not(None)
        ),
    ]
    if district is not None:
        parts = [p.where(p.selected_columns.district_code == district) for p in parts]
    if before is not None:
        parts = [p.where(p.selected_columns.started_on < before) for p in parts]
    u = sa.union_all(*parts).subquery()
    rows = conn.execute(
        sa.select(u.c.district_code, u.c.key_field, u.c.above_size, u.c.started_on, sa.func.sum(u.c.n)).group_by(
            u.c.district_code, u.c.key_field, u.c.above_size, u.c.started_on
        )
    )
    return {(str(r[0]), bool(r[1]), bool(r[2]), _as_date(r[3])): int(r[4]) for r in rows if r[4]}


def counted_states(conn: sa.Connection) -> dict[StateKey, int]:
    """The same figures as `states`, counted over the firms (a full pass)."""
    rows = conn.execute(
        sa.select(E.c.district_code, E.c.key_field, E.c.above_size, E.c.state, sa.func.count()).group_by(
            E.c.district_code, E.c.key_field, E.c.above_size, E.c.state
        )
    )
    return {(str(r[0]), bool(r[1]), bool(r[2]), str(r[3])): int(r[4]) for r in rows}


def counted_starts(conn: sa.Connection) -> dict[StartKey, int]:
    """The same figures as `starts`, counted over the firms (a full pass)."""
    day = _started_on(conn.dialect.name).label("day")
    rows = conn.execute(
        sa.select(E.c.district_code, E.c.key_field, E.c.above_size, day, sa.func.count())
        .where(day.is_not(None))
        .group_by(E.c.district_code, E.c.key_field, E.c.above_size, day)
    )
    return {(str(r[0]), bool(r[1]), bool(r[2]), _as_date(r[3])): int(r[4]) for r in rows}


def compact(conn: sa.Connection) -> int:
    """Fold the deltas into the summary in the caller's transaction; returns how many were folded. A delta
    committed meanwhile stays for the next time (the DELETE takes only the rows it sees)."""
    if conn.dialect.name != "postgresql":
        return 0  # SQLite's triggers write the summary itself
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(COMPACT_LOCK)))
    folded = conn.exec_driver_sql(
        """
        WITH gone AS (
            DELETE FROM summary_deltas RETURNING district_code, key_field, above_size, state, started_on, n
        ), folded_states AS (
            INSERT INTO summary_states (district_code, key_field, above_size, state, firms)
            SELECT district_code, key_field, above_size, state, sum(n) FROM gone
            GROUP BY district_code, key_field, above_size, state
            ORDER BY district_code, key_field, above_size, state
            ON CONFLICT (district_code, key_field, above_size, state)
            DO UPDATE SET firms = summary_states.firms + excluded.firms
        ), folded_starts AS (
            INSERT INTO summary_starts (district_code, key_field, above_size, started_on, firms)
            SELECT district_code, key_field, above_size, started_on, sum(n) FROM gone
            WHERE started_on IS NOT NULL
            GROUP BY district_code, key_field, above_size, started_on
            ORDER BY district_code, key_field, above_size, started_on
            ON CONFLICT (district_code, key_field, above_size, started_on)
            DO UPDATE SET firms = summary_starts.firms + excluded.firms
        )
        SELECT count(*) FROM gone
        """
    ).scalar_one()
    conn.execute(sa.delete(SUMMARY_STATES).where(SUMMARY_STATES.c.firms == 0))
    conn.execute(sa.delete(SUMMARY_STARTS).where(SUMMARY_STARTS.c.firms == 0))
    return int(folded)


@dataclass(frozen=True)
class Difference:
    """Where the summary and the count over the firms disagree: (what, key, summary's figure, the firms')."""

    rows: list[tuple[str, tuple[Any, ...], int, int]]

    @property
    def equal(self) -> bool:
        return not self.rows


def _lock(conn: sa.Connection) -> None:
    """Hold off every write to the firms for the rest of the transaction (reads go on), so the summary and
    the count are of one moment. SQLite: the caller's write transaction already does."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE enterprises IN SHARE MODE")


def check(conn: sa.Connection) -> Difference:
    """Compare the summary with a count over the firms (a full pass), in the caller's write transaction."""
    _lock(conn)
    rows: list[tuple[str, tuple[Any, ...], int, int]] = []
    pairs: list[tuple[str, dict[Any, int], dict[Any, int]]] = [
        ("state", dict(states(conn)), dict(counted_states(conn))),
        ("start", dict(starts(conn)), dict(counted_starts(conn))),
    ]
    for what, kept, counted in pairs:
        for key in sorted(set(kept) | set(counted), key=str):
            if kept.get(key, 0) != counted.get(key, 0):
                rows.append((what, key, kept.get(key, 0), counted.get(key, 0)))
    return Difference(rows)


def rebuild(conn: sa.Connection) -> Difference:
    """Recount the summary from the firms in the caller's write transaction; returns what was wrong."""
    wrong = check(conn)
    for table in (SUMMARY_DELTAS, SUMMARY_STATES, SUMMARY_STARTS):
        conn.execute(sa.delete(table))
    day = _started_on(conn.dialect.name)
    conn.execute(
        sa.insert(SUMMARY_STATES).from_select(
            ["district_code", "key_field", "above_size", "state", "firms"],
            sa.select(E.c.district_code, E.c.key_field, E.c.above_size, E.c.state, sa.func.count()).group_by(
                E.c.district_code, E.c.key_field, E.c.above_size, E.c.state
            ),
        )
    )
    conn.execute(
        sa.insert(SUMMARY_STARTS).from_select(
            ["district_code", "key_field", "above_size", "started_on", "firms"],
            sa.select(E.c.district_code, E.c.key_field, E.c.above_size, day, sa.func.count())
            .where(day.is_not(None))
            .group_by(E.c.district_code, E.c.key_field, E.c.above_size, day),
        )
    )
    return wrong
