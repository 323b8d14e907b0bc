"""Small SQL building blocks that differ between SQLite and PostgreSQL: JSON objects, local dates,
date arithmetic and INSERT … SELECT … ON CONFLICT DO NOTHING."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from workflow.models import UTCDateTime

Expr = sa.ColumnElement[Any]


def date_value(dialect: str, day: dt.date) -> Expr:
    """A date constant in a SELECT list (SQLite keeps dates as ISO text; CAST AS DATE there means a number)."""
    if dialect == "sqlite":
        return sa.literal(day.isoformat(), sa.String)
    return sa.cast(sa.literal(day, sa.Date), sa.Date)


def text_value(value: str) -> Expr:
    return sa.cast(sa.literal(value, sa.String), sa.String)


def int_value(value: int) -> Expr:
    return sa.cast(sa.literal(value, sa.Integer), sa.Integer)


def instant_value(value: dt.datetime) -> Expr:
    return sa.literal(value, UTCDateTime())


def json_object(dialect: str, pairs: dict[str, Any]) -> Expr:
    """A JSON object built in SQL; keys are our own constants, values expressions."""
    args: list[Any] = []
    for key, value in pairs.items():
        if not key.isidentifier():
            raise ValueError(f"unsafe JSON key {key!r}")
        args += [sa.literal_column(f"'{key}'"), value]
    return sa.func.json_object(*args) if dialect == "sqlite" else sa.func.json_build_object(*args)


def concat(*parts: Any) -> Expr:
    """String concatenation of text constants and (integer) columns, e.g. a dedupe key."""
    out: Expr | None = None
    for part in parts:
        piece = text_value(part) if isinstance(part, str) else sa.cast(part, sa.String)
        out = piece if out is None else out.concat(piece)
    assert out is not None
    return out


def local_date_plus(dialect: str, instant: Expr, days: int, tz: ZoneInfo, near: dt.date) -> Expr:
    """The local calendar date of a stored UTC instant, plus `days`. SQLite knows no zones: it uses the
    zone's offset near the sweep date, exact for zones without daylight saving (Asia/Shanghai)."""
    if dialect == "sqlite":
        offset = tz.utcoffset(dt.datetime.combine(near, dt.time(12)))
        seconds = int(offset.total_seconds()) if offset is not None else 0
        return sa.func.date(instant, f"{seconds:+d} seconds", f"{days:+d} days")
    return sa.cast(sa.func.timezone(text_value(str(tz)), instant), sa.Date) + int_value(days)


def days_between(dialect: str, earlier: Expr, later: Expr) -> Expr:
    """Whole days from one date expression to another."""
    if dialect == "sqlite":
        return sa.cast(sa.func.julianday(later) - sa.func.julianday(earlier), sa.Integer)
    return sa.cast(later - earlier, sa.Integer)


def start_of_local_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tz)


def _insert_ignoring(dialect: str, table: sa.Table, columns: list[str], select: sa.Select[Any]) -> Any:
    """INSERT … SELECT … ON CONFLICT (dedupe_key) DO NOTHING in the dialect's own construct."""
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    return insert(table).from_select(columns, select).on_conflict_do_nothing(index_elements=["dedupe_key"])


def insert_statement(dialect: str, table: sa.Table, columns: list[str], select: sa.Select[Any]) -> Any:
    """INSERT … SELECT … ON CONFLICT (dedupe_key) DO NOTHING, built once and run with `run_insert`.
    On PostgreSQL it is wrapped to count what RETURNING gives back (psycopg reports no row count for it
    through SQLAlchemy)."""
    stmt = _insert_ignoring(dialect, table, columns, select)
    if dialect == "sqlite":
        return stmt
    inserted = stmt.returning(table.c.dedupe_key).cte("inserted")
    return sa.select(sa.func.count()).select_from(inserted)


def insert_counting(dialect: str, table: sa.Table, columns: list[str], select: sa.Select[Any], by: str) -> Any:
    """Like `insert_statement`, but run with `run_insert_counts` it tells how many new rows each value
    of the column `by` got (the ladder's steps of one INSERT)."""
    stmt = _insert_ignoring(dialect, table, columns, select).returning(table.c[by])
    if dialect == "sqlite":  # SQLite has no INSERT inside a WITH: the new rows' values come back to count
        return stmt
    inserted = stmt.cte("inserted")
    return sa.select(inserted.c[by], sa.func.count()).group_by(inserted.c[by])


def run_insert_counts(conn: sa.Connection, stmt: Any, params: dict[str, Any]) -> dict[str, int]:
    """Run an `insert_counting`; returns the new rows per value."""
    result = conn.execute(stmt, params)
    if conn.dialect.name == "sqlite":
        return dict(Counter(str(value) for (value,) in result))
    return {str(value): int(n) for value, n in result}


def run_insert(conn: sa.Connection, stmt: Any, params: dict[str, Any]) -> int:
    """Run an `insert_statement`; returns the rows that were new."""
    result = conn.execute(stmt, params)
    if conn.dialect.name == "sqlite":
        return max(result.rowcount, 0)
    return int(result.scalar_one())
