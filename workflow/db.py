"""Database setup: engines for SQLite (WAL) and PostgreSQL, units of work, and migrations through Alembic.

Units of work — how a transaction is opened, one way per need:
- `read_unit(session)`: the read helper for everyone. A read-only look on the session's connection, ended
  (rolled back) at once so no snapshot or lock outlives it.
- `write_unit(session)`: the write helper for everyone. Begun as a writer (`BEGIN IMMEDIATE` on SQLite, so a
  read-check-write unit never meets a snapshot that went stale under it), committed at the end, rolled back on
  any error.
- `begin_write(session)`: `write_unit`'s first step alone, for the older services that commit or roll back the
  session themselves; new code uses `write_unit`.
- `_engine_unit` and `_engine_units`: the engine's fast path, private to `workflow.engine` (one fire) and
  `workflow.bulk` (many fires on one held connection) — a test keeps everyone else out. They run at the
  driver (`workflow.driver.Raw`) without the Session's bookkeeping, which costs more than a fire's own
  statements; a session already in a transaction, or bound to a connection, gets an ordinary `write_unit`.
- Migrations and scripts use `engine.begin()` / `engine.connect()` as SQLAlchemy gives them;
  `database_answers(engine)` is the health check's one query.

Module state: `_WRITERS`, a weak cache of each engine's writer variant (`sqlite_begin="IMMEDIATE"`), which
goes with its engine.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlmodel import Session

from workflow.driver import Raw

MIGRATIONS = Path(__file__).parent / "migrations"


# Page cache per SQLite connection (grows only as pages are read). SQLite's default of 2 MB is far below
# a city's indexes: a million-row import or a sweep would spill and re-read the same pages over and over.
SQLITE_CACHE_KIB = 64 * 1024


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
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            # straight to the driver: this runs once per transaction, and SQLAlchemy's execution path
            # costs more than the BEGIN itself; errors are wrapped as SQLAlchemy's, as they would be there
            Raw.of(conn).execute_sql(f"BEGIN {mode}", ())

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "handle_error")
    def _failed_ping_is_a_disconnect(context: sa.engine.ExceptionContext) -> None:
        """A pre-ping that fails in any way means the pooled connection is gone: the pool then connects
        afresh (and a database that is down answers 503). When the server goes away in the middle of the
        ping, psycopg fails SQLAlchemy's clean-up after it with a ProgrammingError ("can't change
        'autocommit' now"), which the dialect does not take for a disconnect and the request got a 500."""
        if context.is_pre_ping:
            context.is_disconnect = True

    return engine


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer (`write_unit`'s first step; the caller commits or rolls
    back). A session already in a transaction keeps it (the caller chose how it began)."""
    if session.in_transaction():
        session.connection()
        return
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


# ---- the engine's fast path (private to workflow.engine and workflow.bulk) ------------------------------

_WRITERS: weakref.WeakKeyDictionary[sa.Engine, sa.Engine] = weakref.WeakKeyDictionary()


def _writer(engine: sa.Engine) -> sa.Engine:
    writer = _WRITERS.get(engine)
    if writer is None:
        writer = _WRITERS[engine] = engine.execution_options(sqlite_begin="IMMEDIATE")
    return writer


def _through_session(session: Session) -> bool:
    """Whether the session's work must commit together: it is in a transaction, or bound to a connection."""
    return session.in_transaction() or not isinstance(session.get_bind(), sa.Engine)


@contextmanager
def _connection_unit(session: Session) -> Iterator[sa.Connection]:
    """`write_unit` on a pooled SQLAlchemy connection of the session's engine, begun as a writer, without the
    Session's own bookkeeping (about 100 µs a unit); or the ordinary `write_unit` (see `_through_session`)."""
    bind = session.get_bind()
    if _through_session(session) or not isinstance(bind, sa.Engine):
        with write_unit(session) as conn:
            yield conn
        return
    with _writer(bind).connect() as conn, conn.begin():
        yield conn


@contextmanager
def _engine_unit(session: Session, *, with_connection: bool = False) -> Iterator[tuple[Raw, sa.Connection | None]]:
    """The engine's unit of work, at the driver: a pooled DBAPI connection of the session's engine, begun
    as a writer (`BEGIN IMMEDIATE` on SQLite), committed at the end and rolled back on any error — without
    SQLAlchemy's Connection and Session bookkeeping, which costs more than the unit's own statements
    (~150 µs a unit on a 2-core machine). Yields the driver and, when `with_connection` is asked for (more
    writes in SQLAlchemy must join the same transaction), the SQLAlchemy connection around it; a session
    already in a transaction, or bound to a connection, gets the ordinary `write_unit` so its work commits
    together."""
    bind = session.get_bind()
    if with_connection or _through_session(session) or not isinstance(bind, sa.Engine):
        with _connection_unit(session) as conn:
            yield Raw.of(conn), conn
        return
    pooled = bind.raw_connection()
    try:
        raw = Raw(pooled.driver_connection, bind.dialect)
        with _driver_transaction(pooled, raw):
            yield raw, None
    finally:
        pooled.close()


@contextmanager
def _engine_units(session: Session) -> Iterator[Callable[[], AbstractContextManager[Raw]]]:
    """One pooled connection held for many units of work, each its own transaction: `with unit() as raw: …`
    (a bulk action: no checkout, no ping per unit). A session already in a transaction, or bound to a
    connection, gets one `write_unit` per unit instead."""
    bind = session.get_bind()
    if _through_session(session) or not isinstance(bind, sa.Engine):

        @contextmanager
        def through_session() -> Iterator[Raw]:
            with _connection_unit(session) as conn:
                yield Raw.of(conn)

        yield through_session
        return
    pooled = bind.raw_connection()
    try:
        raw = Raw(pooled.driver_connection, bind.dialect)

        @contextmanager
        def unit() -> Iterator[Raw]:
            with _driver_transaction(pooled, raw):
                yield raw

        yield unit
    finally:
        pooled.close()


@contextmanager
def _driver_transaction(pooled: Any, raw: Raw) -> Iterator[None]:
    """One transaction on a pooled DBAPI connection: begun as a writer, committed, or rolled back on any error."""
    if raw.sqlite:
        raw.execute_sql("BEGIN IMMEDIATE", ())
    try:
        yield
    except BaseException:
        _roll_back(pooled)
        raise
    try:
        pooled.commit()
    except raw.dbapi_error as error:
        _roll_back(pooled)
        raise sa.exc.DBAPIError.instance("COMMIT", (), error, raw.dbapi_error) from error


def _roll_back(pooled: Any) -> None:
    try:
        pooled.rollback()
    except Exception:  # a connection that cannot roll back (gone) is not given back to the pool
        pooled.invalidate()


# ---- migrations ---------------------------------------------------------------------------------


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


def database_answers(engine: sa.Engine) -> bool:
    """Does the database answer a query now?"""
    try:
        with engine.connect() as conn:
            conn.execute(sa.select(1))
    except sa.exc.SQLAlchemyError:
        return False
    return True
