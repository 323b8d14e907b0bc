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
- `Reads.reading(...)`: where a read-only request reads — the PostgreSQL hot standby
  (`DABIAO_READ_DATABASE_URL`) when it answers and keeps up, else the primary (see `Reads`). Routes do not
  call it: they take the read session of `api.deps` instead of the ordinary one.
- Migrations and scripts use `engine.begin()` / `engine.connect()` as SQLAlchemy gives them;
  `database_answers(engine)` is the health check's one query.

Module state: `_WRITERS`, a weak cache of each engine's writer variant (`sqlite_begin="IMMEDIATE"`), which
goes with its engine. A `Reads` keeps its own state (the standby's last measured freshness, the open circuit).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlmodel import Session

from workflow.driver import Raw

if TYPE_CHECKING:
    from workflow.settings import Settings

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


# ---- reads from a hot standby ---------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """What the last measurement found of the standby.

    `as_of`: the standby holds every transaction the primary committed up to this moment (the primary's
    clock); `lag_seconds`: how far that lies behind the primary's clock at the measurement (0 when the
    standby had replayed all the primary had written); `usable`: reads may go there; `reason`: why not."""

    usable: bool
    as_of: dt.datetime | None = None
    lag_seconds: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class Read:
    """Where one request reads: `bind` (the primary engine, or a connection of the standby held for the
    request), and, on the standby, how fresh it was (`as_of`, `lag_seconds`)."""

    bind: sa.Engine | sa.Connection
    replica: bool = False
    as_of: dt.datetime | None = None
    lag_seconds: float | None = None


NOT_MEASURED = Freshness(usable=False, reason="not measured yet")

# The standby's measurement: has it replayed everything the primary had written when asked (the primary's
# WAL position, read first), and else the commit time of the last transaction it replayed.
_PRIMARY_POSITION = sa.text("SELECT pg_current_wal_lsn()::text, clock_timestamp()")
_STANDBY_POSITION = sa.text(
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn), pg_last_xact_replay_timestamp()"
)


class Reads:
    """Reads for the dashboards, lists, exports and task lists: on the hot standby when it answers and is at
    most `max_lag_seconds` behind, else on the primary — never an error of the standby's making.

    - The standby's lag is measured at most every `check_seconds`, in the background: a request never waits
      for the measurement; it uses the last one (before the first, the primary).
    - A circuit breaker: when the standby fails (cannot connect within the short connect timeout, or fails
      the measurement), reads go to the primary for `retry_seconds` without trying it; then the next
      measurement tries again.
    - A caller that wrote at `wrote_at` (epoch seconds) reads the standby only once it holds that moment
      (read your own writes); before, the primary.
    """

    def __init__(
        self,
        primary: sa.Engine,
        replica: sa.Engine,
        *,
        max_lag_seconds: float,
        check_seconds: float = 1.0,
        retry_seconds: float = 15.0,
    ) -> None:
        self.primary, self.replica = primary, replica
        self.max_lag_seconds, self.check_seconds, self.retry_seconds = max_lag_seconds, check_seconds, retry_seconds
        self.failures = 0  # times the standby failed (each opens the circuit)
        self._freshness = NOT_MEASURED
        self._measured = float("-inf")  # time.monotonic() of the last measurement
        self._open_until = float("-inf")  # the circuit is open (primary only) until then
        self._measuring = threading.Lock()

    @classmethod
    def of(cls, primary: sa.Engine, settings: Settings) -> Reads | None:
        """The reads of the app's settings (`DABIAO_READ_DATABASE_URL` and its `replica_*` local settings),
        or None when no standby is configured."""
        if not settings.read_database_url:
            return None
        replica = make_engine(
            settings.read_database_url, connect_args={"connect_timeout": settings.replica_connect_timeout_seconds}
        )
        return cls(
            primary,
            replica,
            max_lag_seconds=settings.replica_max_lag_seconds,
            check_seconds=settings.replica_check_seconds,
            retry_seconds=settings.replica_retry_seconds,
        )

    @property
    def freshness(self) -> Freshness:
        """The last measurement (a measurement is started in the background when it has grown old)."""
        now = time.monotonic()
        if now - self._measured >= self.check_seconds and now >= self._open_until and not self._measuring.locked():
            threading.Thread(target=self.measure, name="dabiao-replica-check", daemon=True).start()
        if now < self._open_until:
            return Freshness(usable=False, reason="circuit open after a failure")
        return self._freshness

    def measure(self) -> Freshness:
        """Measure the standby's lag now (one measurement at a time; the others keep the last)."""
        if not self._measuring.acquire(blocking=False):
            return self._freshness
        try:
            self._freshness = self._measure()
            self._measured = time.monotonic()
            return self._freshness
        finally:
            self._measuring.release()

    def _measure(self) -> Freshness:
        try:
            with self.primary.connect() as conn:
                lsn, now = conn.execute(_PRIMARY_POSITION).one()
        except sa.exc.SQLAlchemyError:
            return Freshness(usable=False, reason="the primary does not answer")
        try:
            with self.replica.connect() as conn:
                standby, caught_up, replayed = conn.execute(_STANDBY_POSITION, {"lsn": lsn}).one()
        except sa.exc.SQLAlchemyError:
            self._trip()
            return Freshness(usable=False, reason="the standby does not answer")
        if not standby:
            return Freshness(usable=False, reason="not a standby (not in recovery)")
        if caught_up:
            return Freshness(usable=True, as_of=now, lag_seconds=0.0)
        if replayed is None:
            return Freshness(usable=False, reason="nothing replayed yet")
        lag = max(0.0, (now - replayed).total_seconds())
        if lag > self.max_lag_seconds:
            return Freshness(usable=False, as_of=replayed, lag_seconds=lag, reason="too far behind")
        return Freshness(usable=True, as_of=replayed, lag_seconds=lag)

    def _trip(self) -> None:
        """Open the circuit; when it closes, the next measurement (not a request) tries the standby first."""
        self.failures += 1
        self._freshness = Freshness(usable=False, reason="the standby does not answer")
        self._open_until = time.monotonic() + self.retry_seconds

    @contextmanager
    def reading(self, *, wrote_at: float | None = None) -> Iterator[Read]:
        """Where to read now: a standby connection held for the block, or else the primary engine."""
        fresh = self.freshness
        if fresh.usable and fresh.as_of is not None and (wrote_at is None or fresh.as_of.timestamp() > wrote_at):
            try:
                conn = self.replica.connect()
            except sa.exc.SQLAlchemyError:
                self._trip()
            else:
                with conn:
                    yield Read(conn, replica=True, as_of=fresh.as_of, lag_seconds=fresh.lag_seconds)
                return
        yield Read(self.primary)

    def dispose(self) -> None:
        self.replica.dispose()


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
