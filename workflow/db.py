"""Database setup: engines for SQLite (WAL) and PostgreSQL, sessions, and migrations through Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlmodel import Session

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine with this project's connection habits: SQLite in WAL with foreign keys and a busy
    timeout, transactions begun by us so a writer can ask for `BEGIN IMMEDIATE`."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer. On SQLite this takes the write lock first, so a
    read-check-write unit of work never meets a snapshot that went stale under it."""
    session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


@contextmanager
def write_unit(session: Session) -> Iterator[sa.Connection]:
    """One writing unit of work: begun as a writer, committed at the end, rolled back on any error."""
    begin_write(session)
    try:
        yield session.connection()
        session.commit()
    except BaseException:
        session.rollback()
        raise


@contextmanager
def read_unit(session: Session) -> Iterator[sa.Connection]:
    """A read-only look, ended (rolled back) at once so no snapshot or lock outlives it."""
    try:
        yield session.connection()
    finally:
        session.rollback()


def alembic_config(engine: sa.Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser interpolates %
    config.attributes["engine"] = engine
    return config


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest migration; harmless when it is there already."""
    command.upgrade(alembic_config(engine), "head")


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        value = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        return str(value) if value is not None else None


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
