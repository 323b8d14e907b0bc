"""The engine's driver-level hot path: what it stores reads back through SQLAlchemy exactly as SQLAlchemy
would have stored it, driver errors surface as SQLAlchemy's, and a failure anywhere rolls back everything."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from states import Role, VersionConflict
from tests.factories import Driver, clock, make_firm
from workflow import engine as engine_module
from workflow.audit import verify_chain
from workflow.campaign import Campaign
from workflow.context import Context
from workflow.db import _engine_unit as hot_write_unit
from workflow.driver import Raw
from workflow.tables import APPLICATIONS, ENTERPRISES, EVENTS, OUTBOX


def test_what_the_driver_writes_reads_back_as_sqlalchemy_writes_it(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    result = d.fire("notify", Role.district_bureau)
    with engine.connect() as conn:
        event = conn.execute(sa.select(EVENTS).where(EVENTS.c.id == result.event_id)).one()
        row = conn.execute(sa.select(ENTERPRISES).where(ENTERPRISES.c.id == firm)).one()
        mail = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.enterprise_id == firm)).one()
    assert event.at == d.clock.now() and event.at.tzinfo is not None
    assert (row.notified_at, row.updated_at) == (d.clock.now(), d.clock.now())
    assert mail.next_attempt_at == d.clock.now() and mail.context["trigger"] == "notify"
    assert event.payload == {} and event.hash == result.event_hash == row.chain_head
    if engine.dialect.name == "sqlite":  # the very text SQLAlchemy's DateTime writes: naive UTC, microseconds
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT at FROM events WHERE id = ?", (result.event_id,)).scalar()
            conn.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == firm).values(updated_at=d.clock.now()))
            by_sqlalchemy = conn.exec_driver_sql("SELECT updated_at FROM enterprises WHERE id = ?", (firm,)).scalar()
        assert stored == by_sqlalchemy == d.clock.now().astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def test_driver_errors_surface_as_sqlalchemy_errors_and_naive_instants_are_refused(engine: sa.Engine) -> None:
    firm = make_firm(engine)
    row: dict[str, Any] = {
        "dedupe_key": "test:1",
        "kind": "mobilization_notice",
        "audience": "enterprise",
        "enterprise_id": firm,
        "context": {},
        "status": "pending",
        "attempts": 0,
        "created_at": dt.datetime(2022, 7, 1, tzinfo=dt.UTC),
    }
    with Session(engine) as session:
        with hot_write_unit(session) as (raw, _):
            raw.insert(OUTBOX, row)
        with pytest.raises(sa.exc.IntegrityError), hot_write_unit(session) as (raw, _):
            raw.insert(OUTBOX, row)
        with pytest.raises(ValueError, match="naive"), hot_write_unit(session) as (raw, _):
            raw.insert(OUTBOX, {**row, "dedupe_key": "test:2", "created_at": dt.datetime(2022, 7, 1)})
        with hot_write_unit(session) as (raw, _):
            raw.insert_ignore(OUTBOX, row, key="dedupe_key")  # taken: skipped, no error
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(OUTBOX)).scalar() == 1


def test_a_failure_after_the_effects_wrote_rolls_everything_back(
    engine: sa.Engine, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    d.fire("notify", Role.district_bureau)
    d.fire("start_self_assessment", Role.enterprise)
    d.self_assess()
    d.dossier()
    with engine.connect() as conn:
        before = conn.execute(sa.select(ENTERPRISES).where(ENTERPRISES.c.id == firm)).one()

    def broken(*args: Any, **kw: Any) -> str:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(engine_module, "event_hash", broken)  # after the application row was inserted
    with pytest.raises(RuntimeError):
        d.fire("submit_application", Role.enterprise)
    monkeypatch.undo()
    with engine.connect() as conn:
        after = conn.execute(sa.select(ENTERPRISES).where(ENTERPRISES.c.id == firm)).one()
        apps = conn.execute(sa.select(APPLICATIONS).where(APPLICATIONS.c.enterprise_id == firm)).all()
    assert after == before and apps == []
    d.fire("submit_application", Role.enterprise)  # and the connection went back to the pool in order
    with engine.connect() as conn:
        assert verify_chain(conn).ok


def test_a_session_with_its_own_transaction_commits_with_the_fire(engine: sa.Engine, campaign: Campaign) -> None:
    firm, other = make_firm(engine), make_firm(engine)
    with Session(engine) as session:
        session.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == other).values(phone="110"))
        assert session.in_transaction()
        engine_module.fire(
            session,
            enterprise_id=firm,
            trigger="notify",
            actor=engine_module.Actor(name="区局", role=Role.district_bureau, district_code="320412"),
            context=Context(campaign, clock()),
        )
        assert not session.in_transaction()  # committed together, as before
    with engine.connect() as conn:
        assert conn.execute(sa.select(ENTERPRISES.c.phone).where(ENTERPRISES.c.id == other)).scalar() == "110"


def test_a_stale_version_writes_nothing(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    d.fire("notify", Role.district_bureau)
    with Session(engine) as session, hot_write_unit(session) as (raw, _):
        moved = raw.move_and_append(
            ENTERPRISES,
            {"version": 99},
            where={"id": firm, "version": 1},  # it is 2 now
            append=(EVENTS, {"enterprise_id": firm, "seq": 9, "trigger": "x", "actor": "x", "role": "x"}),
        )
    assert moved is None
    with pytest.raises(VersionConflict):
        d.fire("start_self_assessment", Role.enterprise, expected_version=1)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(EVENTS.c.enterprise_id == firm)).scalar() == 1
        assert isinstance(Raw.of(conn), Raw)


def test_a_pooled_connection_whose_ping_fails_oddly_is_replaced_not_handed_up(
    pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL restarting in the middle of the pool's ping: psycopg then fails the ping's clean-up with a
    ProgrammingError ("can't change 'autocommit' now"). The pool must take that connection for gone and
    connect afresh, not hand the error up (a request got a 500 from it under a restart)."""
    import psycopg

    from workflow.db import make_engine

    engine = make_engine(pg_schema_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")  # one connection now waits in the pool
        real_ping = type(engine.dialect).do_ping
        calls = []

        def ping(self: Any, dbapi_connection: Any) -> bool:
            calls.append(dbapi_connection)
            if len(calls) == 1:
                raise psycopg.ProgrammingError("can't change 'autocommit' now: connection in transaction status ACTIVE")
            return bool(real_ping(self, dbapi_connection))

        monkeypatch.setattr(type(engine.dialect), "do_ping", ping)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 41 + 1").scalar() == 42
        assert len(calls) == 1  # the failed connection was dropped; the fresh one needs no ping
    finally:
        engine.dispose()
