"""The raw DBAPI driver under SQLAlchemy, for the statements of the engine's hot path: `Raw` (statements
written once with `:name` parameters and translated per dialect, values converted as SQLAlchemy's column types
would bind them, driver errors raised as SQLAlchemy's), its converters and its SQL builders, and
`insert_ignore` (a SQLAlchemy insert that skips rows whose unique key is taken).

Module state, all of it caches that never change an answer:
- `lru_cache`s of translated SQL text, converters and defaults per (table, columns, dialect);
- `_last_instant`, the last instant converted to SQLite's text with its text (a fire binds its one `now` five or
  six times); it is replaced whole, so a thread reads either the old pair or the new one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import sqlalchemy as sa


@lru_cache(maxsize=64)
def _insert_ignore_statement(dialect: str, table: sa.Table, key: str) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert(table).on_conflict_do_nothing(index_elements=[key])


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], *, key: str) -> None:
    """Insert rows, skipping those whose unique `key` is there already. (No count is returned: psycopg
    reports -1 for a many-row insert; callers that need one use RETURNING.)"""
    if rows:
        conn.execute(_insert_ignore_statement(conn.dialect.name, table, key), rows)


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=512)
def _for_dialect(sql: str, dialect: str) -> str:
    """Statements are written once with `:name` parameters (sqlite3's style) and translated for psycopg."""
    return sql if dialect == "sqlite" else _NAMED.sub(r"%(\1)s", sql)


_last_instant: tuple[dt.datetime, str] | None = None  # a fire binds its one `now` five or six times


def _sqlite_instant(value: dt.datetime | None) -> str | None:
    global _last_instant
    if value is None:
        return None
    last = _last_instant  # one read: another thread may replace it, never half of it
    if last is not None and last[0] is value:
        return last[1]
    if value.tzinfo is None:
        raise ValueError("naive datetime: every stored instant must be timezone-aware")
    # SQLAlchemy's SQLite DateTime text, naive UTC, always with microseconds: read back as it writes it
    text = value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    _last_instant = (value, text)
    return text


def _pg_instant(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime: every stored instant must be timezone-aware")
    return value


def _sqlite_date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _sqlite_json(value: Any) -> str:
    return json.dumps(value)


def _pg_json(value: Any) -> Any:
    from psycopg.types.json import Json

    return Json(value)


def _same(value: Any) -> Any:
    return value


@lru_cache(maxsize=64)
def _converters(table: sa.Table, dialect: str) -> dict[str, Callable[[Any], Any]]:
    """How each column's Python value becomes the driver's parameter, as SQLAlchemy's types would bind it."""
    out: dict[str, Callable[[Any], Any]] = {}
    for column in table.columns:
        kind = column.type
        if isinstance(kind, sa.types.TypeDecorator):
            kind = kind.impl_instance
        if isinstance(kind, sa.DateTime):
            out[column.name] = _sqlite_instant if dialect == "sqlite" else _pg_instant
        elif isinstance(kind, sa.Date):
            out[column.name] = _sqlite_date if dialect == "sqlite" else _same
        elif isinstance(kind, sa.JSON):
            out[column.name] = _sqlite_json if dialect == "sqlite" else _pg_json
        else:
            out[column.name] = _same
    return out


@lru_cache(maxsize=64)
def _defaults(table: sa.Table) -> dict[str, Any]:
    """The columns' scalar Python-side defaults, which SQLAlchemy would add to an INSERT that omits them."""
    return {
        column.name: column.default.arg  # type: ignore[attr-defined]
        for column in table.columns
        if column.default is not None and column.default.is_scalar
    }


@lru_cache(maxsize=256)
def _insert_sql(table: sa.Table, keys: tuple[str, ...], dialect: str, ignore_key: str | None) -> str:
    names = ", ".join(f'"{k}"' for k in keys)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join(':' + k for k in keys)})"
    if ignore_key is not None:
        sql += f' ON CONFLICT ("{ignore_key}") DO NOTHING'
    elif dialect != "sqlite":
        sql += " RETURNING id"
    return _for_dialect(sql, dialect)


@lru_cache(maxsize=256)
def _update_sql(table: sa.Table, keys: tuple[str, ...], where: tuple[str, ...], dialect: str) -> str:
    sets = ", ".join(f'"{k}" = :{k}' for k in keys)
    cond = " AND ".join(f'"{k}" = :w_{k}' for k in where)
    return _for_dialect(f"UPDATE {table.name} SET {sets} WHERE {cond}", dialect)


@lru_cache(maxsize=256)
def _pg_cast(table: sa.Table, column: str) -> str:
    from sqlalchemy.dialects import postgresql

    return str(table.c[column].type.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]


@lru_cache(maxsize=256)
def _move_and_append_sql(
    table: sa.Table,
    keys: tuple[str, ...],
    where: tuple[str, ...],
    appended: sa.Table,
    append_keys: tuple[str, ...],
    extra: tuple[tuple[sa.Table, tuple[str, ...], str], ...],
    updates: tuple[tuple[sa.Table, tuple[str, ...], tuple[str, ...]], ...] = (),
) -> str:
    """PostgreSQL: the version-checked UPDATE and the INSERTs and other UPDATEs that depend on it as
    data-modifying CTEs of one statement (one round trip); the INSERTs select from the UPDATE's RETURNING and
    the other UPDATEs ask that it returned a row, so they write nothing when the UPDATE matched nothing. The
    selected parameters are cast to their columns' types (a NULL has no type)."""

    def select(target: sa.Table, prefix: str, columns: tuple[str, ...]) -> str:
        names = ", ".join(f'"{k}"' for k in columns)
        cast = ", ".join(f"CAST(:{prefix}{k} AS {_pg_cast(target, k)})" for k in columns)
        return f"INSERT INTO {target.name} ({names}) SELECT {cast} FROM moved"

    sets = ", ".join(f'"{k}" = :u_{k}' for k in keys)
    cond = " AND ".join(f'"{k}" = :w_{k}' for k in where)
    parts = [
        f"moved AS (UPDATE {table.name} SET {sets} WHERE {cond} RETURNING 1)",
        f"appended AS ({select(appended, 'a_', append_keys)} RETURNING id)",
    ]
    for n, (target, columns, key) in enumerate(extra):
        parts.append(f'x{n} AS ({select(target, f"x{n}_", columns)} ON CONFLICT ("{key}") DO NOTHING)')
    for n, (target, columns, match) in enumerate(updates):
        changes = ", ".join(f'"{k}" = :v{n}_{k}' for k in columns)
        cond = " AND ".join(f'"{k}" = :m{n}_{k}' for k in match)
        parts.append(f"v{n} AS (UPDATE {target.name} SET {changes} WHERE {cond} AND EXISTS (SELECT 1 FROM moved))")
    return _for_dialect(f"WITH {', '.join(parts)} SELECT id FROM appended", "postgresql")


class Raw:
    """The DBAPI connection under a SQLAlchemy connection, inside the same transaction: the engine's hot
    statements go here, each written once and translated once per dialect, their values converted as
    SQLAlchemy's column types would (UTC instants, dates, JSON), and driver errors raised as SQLAlchemy's
    (`OperationalError`, `IntegrityError`, …) so callers and the HTTP layer see what they always saw."""

    __slots__ = ("_dbapi", "dialect", "driver", "sqlite")

    @property
    def dbapi_error(self) -> type[Exception]:
        """The driver's base exception class."""
        error: type[Exception] = self._dbapi.Error
        return error

    def __init__(self, driver: Any, dialect: sa.Dialect) -> None:
        self.driver = driver
        self.dialect = dialect.name
        self.sqlite = self.dialect == "sqlite"
        self._dbapi: Any = dialect.loaded_dbapi

    @classmethod
    def of(cls, conn: sa.Connection) -> Raw:
        """The driver under a SQLAlchemy connection (its transaction is the same)."""
        return cls(conn.connection.driver_connection, conn.dialect)

    def execute_sql(self, sql: str, params: Any) -> Any:
        """Run a statement already in the driver's parameter style; returns the driver's cursor."""
        try:
            return self.driver.execute(sql, params)
        except self._dbapi.Error as error:
            raise sa.exc.DBAPIError.instance(sql, params, error, self._dbapi.Error) from error

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """Run a statement written with `:name` parameters; returns the driver's cursor."""
        return self.execute_sql(_for_dialect(sql, self.dialect), params or {})

    def first(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.execute(sql, params).fetchone()
        return row

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit inside the transaction: released on success, rolled back to on any error (the
        transaction goes on without its writes)."""
        self.execute_sql("SAVEPOINT unit", ())
        try:
            yield
        except BaseException:
            self.execute_sql("ROLLBACK TO SAVEPOINT unit", ())
            self.execute_sql("RELEASE SAVEPOINT unit", ())
            raise
        self.execute_sql("RELEASE SAVEPOINT unit", ())

    def json_value(self, value: Any) -> Any:
        """A JSON column's value as read through the driver (sqlite3 gives its text, psycopg parses it)."""
        return json.loads(value) if self.sqlite and isinstance(value, str) else value

    def instant(self, value: dt.datetime) -> Any:
        return _sqlite_instant(value) if self.sqlite else _pg_instant(value)

    def _bind(self, table: sa.Table, values: Mapping[str, Any]) -> dict[str, Any]:
        convert = _converters(table, self.dialect)
        return {k: convert[k](v) for k, v in values.items()}

    @staticmethod
    def _row(table: sa.Table, values: Mapping[str, Any]) -> dict[str, Any]:
        return {**_defaults(table), **values}

    def insert(self, table: sa.Table, values: Mapping[str, Any]) -> int:
        """Insert one row (omitted columns take their scalar defaults); returns its id."""
        values = self._row(table, values)
        sql = _insert_sql(table, tuple(values), self.dialect, None)
        cursor = self.execute_sql(sql, self._bind(table, values))
        return int(cursor.lastrowid if self.sqlite else cursor.fetchone()[0])

    def insert_ignore(self, table: sa.Table, values: Mapping[str, Any], *, key: str) -> None:
        """Insert one row unless its unique `key` is there already."""
        values = self._row(table, values)
        self.execute_sql(_insert_sql(table, tuple(values), self.dialect, key), self._bind(table, values))

    def move_and_append(
        self,
        table: sa.Table,
        values: Mapping[str, Any],
        *,
        where: Mapping[str, Any],
        append: tuple[sa.Table, Mapping[str, Any]],
        extra: Sequence[tuple[sa.Table, Mapping[str, Any], str]] = (),
        updates: Sequence[tuple[sa.Table, Mapping[str, Any], Mapping[str, Any]]] = (),
    ) -> int | None:
        """UPDATE `table` SET `values` WHERE `where` (a version check) and, only when it matched one row, INSERT
        the `append` row and the `extra` rows (each skipped when its unique key column is taken) and run the
        `updates` (table, values, where). Returns the appended row's id, or None when the UPDATE matched
        nothing and so nothing was written. In order on SQLite; one statement, one round trip, on PostgreSQL."""
        appended, row = append[0], self._row(*append)
        extra = [(target, self._row(target, other), key) for target, other, key in extra]
        if self.sqlite:
            if self.update(table, values, where=where) != 1:
                return None
            new_id = self.insert(appended, row)
            for target, other, key in extra:
                self.insert_ignore(target, other, key=key)
            for target, changes, match in updates:
                self.update(target, changes, where=match)
            return new_id
        shape = tuple((target, tuple(other), key) for target, other, key in extra)
        changed = tuple((target, tuple(changes), tuple(match)) for target, changes, match in updates)
        sql = _move_and_append_sql(table, tuple(values), tuple(where), appended, tuple(row), shape, changed)
        convert = _converters(table, self.dialect)
        params = {f"u_{k}": convert[k](v) for k, v in values.items()}
        params.update({f"w_{k}": convert[k](v) for k, v in where.items()})
        params.update({f"a_{k}": v for k, v in self._bind(appended, row).items()})
        for n, (target, other, _) in enumerate(extra):
            params.update({f"x{n}_{k}": v for k, v in self._bind(target, other).items()})
        for n, (target, changes, match) in enumerate(updates):
            params.update({f"v{n}_{k}": v for k, v in self._bind(target, changes).items()})
            params.update({f"m{n}_{k}": v for k, v in self._bind(target, match).items()})
        found = self.execute_sql(sql, params).fetchone()
        return None if found is None else int(found[0])

    def update(self, table: sa.Table, values: Mapping[str, Any], *, where: Mapping[str, Any]) -> int:
        """UPDATE table SET values WHERE every `where` column equals its value; returns the row count."""
        sql = _update_sql(table, tuple(values), tuple(where), self.dialect)
        params = self._bind(table, values)
        convert = _converters(table, self.dialect)
        params.update({f"w_{k}": convert[k](v) for k, v in where.items()})
        return int(self.execute_sql(sql, params).rowcount)
